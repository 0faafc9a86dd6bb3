"""The gate: the new adapter against the untuned base, and against the adapter it would
replace, on the same held-out examples.

The adapters get the served prompt format; the untuned base gets its fair prompt (a plain
continuation of the prefix for completion, zero-shot chat for doc and refactor), so an
adapter is not credited for teaching the base a format it was never shown. Generation is
greedy and batched, either locally with transformers (the engine may not be running) or
through an OpenAI-compatible engine. Post-processing and scores are the task module's own
(:mod:`covey_specialists.tasks`), so the gate sees what the editor would.

The decision is paired: per example, the new adapter's score on the task's primary metric
minus the other system's, and the percentile-bootstrap 95% interval of that mean difference
(:func:`covey_eval.metrics.paired_bootstrap_ci`). The adapter is accepted only when, against
every comparator (the fair base; the previous adapter when there is one), the interval lies
above zero. A tie, noise, or a gain over the base that loses to the adapter in use is a
refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from covey_eval.metrics import paired_bootstrap_ci
from covey_specialists.tasks import task_module
from covey_training.examples import Example

log = logging.getLogger("covey.train.gate")

STOPS = ("<|endoftext|>", "<|im_end|>")


LEVEL = 0.95
RESAMPLES = 2000


@dataclass
class Comparison:
    """The new adapter against one other system on the primary metric, paired by example."""

    other: str
    """``base`` or ``previous``."""
    mean_diff: float
    """Mean over examples of (new − other)."""
    lo: float
    hi: float
    """The bootstrap interval of ``mean_diff`` at ``level``."""
    n: int
    level: float = LEVEL

    @property
    def better(self) -> bool:
        """The interval excludes zero, above it."""
        return self.lo > 0

    def as_dict(self) -> dict:
        return {"other": self.other, "mean_diff": round(self.mean_diff, 4),
                "lo": round(self.lo, 4), "hi": round(self.hi, 4), "n": self.n,
                "level": self.level, "better": self.better}


def compare(other: str, new: list[float], old: list[float], *, seed: int = 0) -> Comparison:
    """The paired bootstrap interval of mean(new − old) over the same examples."""
    if not new:
        raise ValueError("no examples to compare")
    diff, lo, hi = paired_bootstrap_ci(old, new, resamples=RESAMPLES, seed=seed, level=LEVEL)
    return Comparison(other, diff, lo, hi, len(new))


@dataclass
class GateResult:
    task: str
    examples: int
    base: dict
    tuned: dict
    primary: str
    improved: bool
    """Accepted: better than every comparator (``comparisons``)."""
    comparisons: list[Comparison] = field(default_factory=list)
    previous: dict | None = None
    """The previous adapter's mean scores, when there is one."""
    previous_adapter: str = ""
    samples: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"task": self.task, "examples": self.examples, "primary": self.primary,
               "base": self.base, "tuned": self.tuned, "improved": self.improved,
               "comparisons": [c.as_dict() for c in self.comparisons]}
        if self.previous is not None:
            out["previous"] = self.previous
            out["previous_adapter"] = self.previous_adapter
        return out


def postprocess(ex: Example, raw: str, prompt: str | None = None) -> str:
    """The text the server would show for ``raw`` model output to ``prompt`` (default: the
    served prompt; the base's fair prompt for its answers)."""
    return task_module(ex.task).gate_postprocess(prompt or ex.prompt, ex.meta, raw)


def score(ex: Example, output: str) -> dict[str, float]:
    return task_module(ex.task).gate_scores(ex.meta, output)


def base_prompt(ex: Example) -> str:
    """The untuned base's fair prompt for ``ex``."""
    return task_module(ex.task).gate_base_prompt(ex.prompt, ex.meta)


def summarise(scores: list[dict[str, float]]) -> dict[str, float]:
    keys = scores[0].keys() if scores else []
    return {k: round(mean(s[k] for s in scores), 4) for k in keys}


Generate = Callable[[list[str]], list[str]]
"""Prompts → raw model texts, in order (batched inside)."""


def _outputs(examples: list[Example], prompts: list[str], generate: Generate
             ) -> tuple[list[str], list[dict[str, float]]]:
    raw = generate(prompts)
    if len(raw) != len(examples):
        raise RuntimeError(f"the generator answered {len(raw)} of {len(examples)} prompts")
    shown = [postprocess(ex, r, p) for ex, r, p in zip(examples, raw, prompts, strict=True)]
    return shown, [score(ex, o) for ex, o in zip(examples, shown, strict=True)]


def evaluate(task: str, examples: list[Example], generate_base: Generate,
             generate_tuned: Generate, generate_previous: Generate | None = None, *,
             previous_adapter: str = "", seed: int = 0) -> GateResult:
    """Score the fair base, the new adapter and (when given) the previous adapter on the same
    examples; accept the new one only if it is better than each (see the module's doc)."""
    if not examples:
        raise ValueError("no held-out examples to gate on")
    primary = task_module(task).GATE_PRIMARY
    out_base, base_scores = _outputs(examples, [base_prompt(ex) for ex in examples],
                                     generate_base)
    out_tuned, tuned_scores = _outputs(examples, [ex.prompt for ex in examples],
                                       generate_tuned)
    new = [s[primary] for s in tuned_scores]
    comparisons = [compare("base", new, [s[primary] for s in base_scores], seed=seed)]
    previous, out_prev = None, None
    if generate_previous is not None:
        out_prev, prev_scores = _outputs(examples, [ex.prompt for ex in examples],
                                         generate_previous)
        comparisons.append(compare("previous", new, [s[primary] for s in prev_scores],
                                   seed=seed))
        previous = summarise(prev_scores)
    samples = []
    for i, ex in enumerate(examples):
        sample = {"source": ex.source, "base": out_base[i], "tuned": out_tuned[i]}
        if out_prev is not None:
            sample["previous"] = out_prev[i]
        samples.append(sample)
    return GateResult(task=task, examples=len(examples), base=summarise(base_scores),
                      tuned=summarise(tuned_scores), primary=primary,
                      improved=all(c.better for c in comparisons), comparisons=comparisons,
                      previous=previous, previous_adapter=previous_adapter, samples=samples)


# ------------------------------------------------------------------ generators

class LocalGenerator:
    """Greedy generation with transformers: the base model, with or without an adapter."""

    def __init__(self, base_model: Path, adapter: Path | None, max_new_tokens: int,
                 batch_size: int = 8, threads: int = 1):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        from covey_training.lora import ensure_pad_token

        self.tokenizer = AutoTokenizer.from_pretrained(str(base_model))
        ensure_pad_token(self.tokenizer)  # transformers 5 loads SmolLM2 without one
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:  # transformers 5.x pads only with a pad token
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
        if adapter is not None:
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, str(adapter))
            model = model.merge_and_unload()
        self.model = model.eval()
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.stop_ids = [self.tokenizer.convert_tokens_to_ids(t) for t in STOPS]

    def __call__(self, texts: list[str]) -> list[str]:
        import torch

        out: list[str] = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i:i + self.batch_size]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True,
                                 add_special_tokens=False)
            with torch.inference_mode():
                gen = self.model.generate(**enc, max_new_tokens=self.max_new_tokens,
                                          do_sample=False, eos_token_id=self.stop_ids,
                                          pad_token_id=self.tokenizer.pad_token_id)
            for row in gen[:, enc["input_ids"].shape[1]:]:
                text = self.tokenizer.decode(row, skip_special_tokens=False)
                out.append(_cut_at_stop(text))
            log.info("generated %d/%d", len(out), len(texts))
        return out


def _cut_at_stop(text: str) -> str:
    cut = min((text.index(s) for s in STOPS if s in text), default=len(text))
    return text[:cut]


class EngineGenerator:
    """Greedy generation through an OpenAI-compatible engine's ``/v1/completions``, a batch
    of prompts per request (the engine schedules them together)."""

    def __init__(self, url: str, api_key: str, model: str, max_new_tokens: int,
                 timeout_s: float = 300.0, batch_size: int = 16):
        self.url, self.api_key, self.model = url.rstrip("/"), api_key, model
        self.max_new_tokens, self.timeout_s = max_new_tokens, timeout_s
        self.batch_size = batch_size

    def __call__(self, texts: list[str]) -> list[str]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        out: list[str] = []
        with httpx.Client(timeout=self.timeout_s, headers=headers) as client:
            for i in range(0, len(texts), self.batch_size):
                batch = texts[i:i + self.batch_size]
                resp = client.post(f"{self.url}/v1/completions", json={
                    "model": self.model, "prompt": batch, "max_tokens": self.max_new_tokens,
                    "temperature": 0.0, "stop": list(STOPS)})
                resp.raise_for_status()
                choices = sorted(resp.json()["choices"], key=lambda c: c.get("index", 0))
                if len(choices) != len(batch):
                    raise RuntimeError(f"the engine answered {len(choices)} of {len(batch)} "
                                       "prompts")
                out += [c["text"] for c in choices]
                log.info("generated %d/%d with %s", len(out), len(texts), self.model)
        return out
