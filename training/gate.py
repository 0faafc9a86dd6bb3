"""The gate: score the new adapter against the untuned base on held-out examples.

The adapter gets the served prompt format; the untuned base gets its fair prompt (a plain
continuation of the prefix for completion, zero-shot chat for doc and refactor), so an
adapter is not credited for teaching the base a format it was never shown. Generation is
greedy, either locally with transformers (the engine may not be running) or through an
OpenAI-compatible engine. Post-processing and scores are the task module's own
(:mod:`covey_specialists.tasks`), so the gate sees what the editor would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from covey_specialists.tasks import task_module
from covey_training.examples import Example

log = logging.getLogger("covey.train.gate")

STOPS = ("<|endoftext|>", "<|im_end|>")


@dataclass
class GateResult:
    task: str
    examples: int
    base: dict
    tuned: dict
    primary: str
    improved: bool
    samples: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"task": self.task, "examples": self.examples, "primary": self.primary,
                "base": self.base, "tuned": self.tuned, "improved": self.improved}


def postprocess(ex: Example, raw: str) -> str:
    """The text the server would show for ``raw`` model output."""
    return task_module(ex.task).gate_postprocess(ex.prompt, ex.meta, raw)


def score(ex: Example, output: str) -> dict[str, float]:
    return task_module(ex.task).gate_scores(ex.meta, output)


def base_prompt(ex: Example) -> str:
    """The untuned base's fair prompt for ``ex``."""
    return task_module(ex.task).gate_base_prompt(ex.prompt, ex.meta)


def summarise(scores: list[dict[str, float]]) -> dict[str, float]:
    keys = scores[0].keys() if scores else []
    return {k: round(mean(s[k] for s in scores), 4) for k in keys}


def improved(task: str, base: dict, tuned: dict) -> bool:
    """Strictly better on the primary metric, or equal on it and better on the secondary."""
    module = task_module(task)
    p, s = module.GATE_PRIMARY, module.GATE_SECONDARY
    if tuned.get(p, 0) != base.get(p, 0):
        return tuned.get(p, 0) > base.get(p, 0)
    return tuned.get(s, 0) > base.get(s, 0)


def evaluate(task: str, examples: list[Example], generate_base: Callable[[list[str]], list[str]],
             generate_tuned: Callable[[list[str]], list[str]]) -> GateResult:
    raw_base = generate_base([base_prompt(ex) for ex in examples])
    raw_tuned = generate_tuned([ex.prompt for ex in examples])
    base_scores, tuned_scores, samples = [], [], []
    for ex, rb, rt in zip(examples, raw_base, raw_tuned, strict=True):
        ob, ot = postprocess(ex, rb), postprocess(ex, rt)
        base_scores.append(score(ex, ob))
        tuned_scores.append(score(ex, ot))
        samples.append({"source": ex.source, "base": ob, "tuned": ot})
    base, tuned = summarise(base_scores), summarise(tuned_scores)
    return GateResult(task=task, examples=len(examples), base=base, tuned=tuned,
                      primary=task_module(task).GATE_PRIMARY, improved=improved(task, base, tuned),
                      samples=samples)


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
    """Greedy generation through an OpenAI-compatible engine's ``/v1/completions``."""

    def __init__(self, url: str, api_key: str, model: str, max_new_tokens: int,
                 timeout_s: float = 120.0):
        self.url, self.api_key, self.model = url.rstrip("/"), api_key, model
        self.max_new_tokens, self.timeout_s = max_new_tokens, timeout_s

    def __call__(self, texts: list[str]) -> list[str]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        out = []
        with httpx.Client(timeout=self.timeout_s, headers=headers) as client:
            for text in texts:
                resp = client.post(f"{self.url}/v1/completions", json={
                    "model": self.model, "prompt": text, "max_tokens": self.max_new_tokens,
                    "temperature": 0.0, "stop": list(STOPS)})
                resp.raise_for_status()
                out.append(resp.json()["choices"][0]["text"])
        return out
