"""The gate: the new adapter against the untuned base, and against the adapter it would
replace, on the same held-out examples.

The adapters get the served prompt format; the untuned base gets its fair prompt (a plain
continuation of the prefix for completion, zero-shot chat for doc and refactor), so an
adapter is not credited for teaching the base a format it was never shown. Generation is
greedy: through the engine with the serving client (:class:`EngineGenerator`; the held-out
prompts run concurrently, so the engine batches them), or, where no engine runs, locally
with transformers (:class:`LocalGenerator`), its answers finished the same way.
Post-processing and scores are the task module's own (:mod:`covey_specialists.tasks`), so
the gate sees what the editor would.

The decision is paired: per example, the new adapter's score on the task's primary metric
minus the other system's, and the percentile-bootstrap 95% interval of that mean difference
(:func:`covey_eval.metrics.paired_bootstrap_ci`). The adapter is accepted only when, against
every comparator (the fair base; the previous adapter when there is one), the interval lies
above zero. A tie, noise, or a gain over the base that loses to the adapter in use is a
refusal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from covey_eval.metrics import paired_bootstrap_ci
from covey_specialists.client import EngineClient, cut_at_stop
from covey_specialists.table import Specialist
from covey_specialists.tasks import finished_part, stream_done, task_module
from covey_specialists.tasks.common import Prompt
from covey_training.examples import Example
from covey_usage.calls import CallSink

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
"""Prompts → model texts, in order (batched or concurrent inside), finished as the serving
client finishes them (:class:`EngineGenerator`, :class:`LocalGenerator`)."""


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

def prompt_metas(examples: list[Example]) -> dict[str, dict]:
    """Each prompt text the gate sends for ``examples`` (the served one and the fair
    base's) → its example's meta, from which a generator builds the typed prompt that
    finishes an answer as the editor's would (a completion block cut at ``max_tokens`` keeps
    its whole lines; a single line cut there is dropped)."""
    return {text: ex.meta for ex in examples for text in (ex.prompt, base_prompt(ex))}


def _typed(spec: Specialist, text: str, metas: dict[str, dict], fair_base: bool) -> Prompt:
    fmt = task_module(spec.task).FAIR_BASE_FORMAT if fair_base else spec.prompt_format
    return Prompt(spec.task, fmt, text, dict(metas.get(text, {})))


class EngineGenerator:
    """Greedy generation through the engine with the serving client
    (:class:`~covey_specialists.client.EngineClient`): the same streaming request, stop
    handling and cut-off answers as the editor's, with the specialist's decoding (stop
    strings, frequency penalty) at temperature 0 and at most ``max_new_tokens``.

    The held-out prompts run concurrently, at most ``concurrency`` at a time, so the engine
    batches them. ``model`` is the served name to ask (``base``, a hot-loaded candidate…);
    ``adapter`` labels its calls. Calls go to ``sink`` only when one is given (none by
    default, so the gate needs no usage log). A call that fails raises RuntimeError."""

    def __init__(self, url: str, api_key: str, spec: Specialist, model: str,
                 max_new_tokens: int, *, adapter: str = "", fair_base: bool = False,
                 metas: dict[str, dict] | None = None, concurrency: int = 16,
                 timeout_s: float = 300.0, sink: CallSink | None = None):
        self.url, self.api_key, self.model = url, api_key, model
        # the specialist's own timeout is an editor's; a batch on a busy engine needs more
        self.spec = dataclasses.replace(spec, adapter=adapter, temperature=0.0,
                                        timeout_s=timeout_s)
        self.max_new_tokens, self.concurrency = max_new_tokens, concurrency
        self.fair_base, self.metas, self.sink = fair_base, metas or {}, sink

    def __call__(self, texts: list[str]) -> list[str]:
        return asyncio.run(self._generate(texts))

    async def _generate(self, texts: list[str]) -> list[str]:
        bound = asyncio.Semaphore(self.concurrency)
        done = 0

        async with EngineClient(self.url, self.api_key, sink=self.sink,
                                client_name="train") as client:
            async def one(text: str) -> str:
                nonlocal done
                async with bound:
                    answer = await client.complete(
                        self.spec, _typed(self.spec, text, self.metas, self.fair_base),
                        max_tokens=self.max_new_tokens, model=self.model,
                        report=self.sink is not None)
                if not answer.ok:
                    raise RuntimeError(f"the engine did not answer a gate prompt for "
                                       f"{self.model} ({answer.call.status}): "
                                       f"{answer.call.error}")
                done += 1
                log.info("generated %d/%d with %s", done, len(texts), self.model)
                return answer.text

            return list(await asyncio.gather(*(one(t) for t in texts)))


class LocalGenerator:
    """Greedy generation with transformers in this process: the base model, with or without
    an adapter.

    It exists because ``covey train`` must gate an adapter where no engine runs (a fresh
    install, a machine that only trains); with an engine (``--engine-url``) the gate uses
    :class:`EngineGenerator`, the serving client. Its answers are finished the way the
    client finishes them: cut at the specialist's stop strings by the client's own
    :func:`~covey_specialists.client.cut_at_stop`, and an answer cut off at
    ``max_new_tokens`` reduced to the task's finished part. It applies no frequency
    penalty, so its figures may differ slightly from the engine's for a specialist that
    sets one."""

    def __init__(self, base_model: Path, adapter: Path | None, spec: Specialist,
                 max_new_tokens: int, *, fair_base: bool = False,
                 metas: dict[str, dict] | None = None, batch_size: int = 8, threads: int = 1):
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
        self.spec, self.fair_base, self.metas = spec, fair_base, metas or {}
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        # the engine ends a generation at the end-of-text token whatever the table says
        self.stops = tuple(dict.fromkeys((*spec.stop, *STOPS)))
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
            for text, row in zip(batch, gen[:, enc["input_ids"].shape[1]:], strict=True):
                raw = self.tokenizer.decode(row, skip_special_tokens=False)
                ran_out = len(row) >= self.max_new_tokens and not any(
                    int(t) in self.stop_ids for t in row)
                out.append(finish_answer(_typed(self.spec, text, self.metas, self.fair_base),
                                         raw, self.stops, ran_out))
            log.info("generated %d/%d", len(out), len(texts))
        return out


def finish_answer(prompt: Prompt, raw: str, stops: tuple[str, ...], ran_out: bool) -> str:
    """What the serving client returns for ``raw`` generated text: cut at the first stop
    string; and, when generation ran out of tokens before a stop or the task's end
    (:func:`covey_specialists.tasks.stream_done`), only the task's finished part."""
    text = cut_at_stop(raw, stops)
    if ran_out and text == raw and not stream_done(prompt, text):
        return finished_part(prompt, text)
    return text
