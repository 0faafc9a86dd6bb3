"""The systems under evaluation: each turns a task into an answer in the task's edit form.

Answer forms: completion → the middle text; doc → the docstring block as it would be
inserted (indented, triple-quoted); refactor → the rewritten code.

- ``oracle`` answers with the reference and ``empty`` with nothing: sanity bounds.
- ``specialist`` calls the engine with the table's specialist (its adapter, if any).
- ``base`` calls the same engine and prompts with the untuned base model (``model=base``).
- ``baseline`` calls an OpenAI-compatible LLM endpoint.
- ``routed`` asks the specialist first and escalates to the baseline per the routing policy
  (:mod:`covey_specialists.escalation`, the runner the language server uses).

With ``signals`` the specialist and baseline systems also record what routing decides on —
the answer's token log-probs and why validation rejects it — so ``covey eval sweep`` can
replay any threshold over one set of answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from covey_eval.checks import validator
from covey_eval.scoring import body_indent
from covey_eval.tasks import Task
from covey_specialists import escalation, prompts
from covey_specialists.baseline import BaselineClient, ask
from covey_specialists.client import EngineClient
from covey_specialists.table import Specialist, SpecialistsTable
from covey_usage.calls import ModelCall

SYSTEM_NAMES = ("specialist", "base", "baseline", "routed", "oracle", "empty")
STAND_IN_LABEL = "untuned base standing in for the baseline LLM"


@dataclass
class Answer:
    text: str
    call: ModelCall | None = None
    """The call whose answer this is (or that explains why there is none)."""
    calls: list[ModelCall] = field(default_factory=list)
    """Every call made for the answer (routed: the specialist's and the baseline's)."""
    extra: dict = field(default_factory=dict)
    """Routing facts for the row: source, escalated, log-probs, why validation failed."""

    def all_calls(self) -> list[ModelCall]:
        return self.calls or ([self.call] if self.call is not None else [])


class System:
    name: str = ""
    label: str = ""
    kind: str = "sanity"
    """``sanity``, ``local`` (small model on the engine) or ``llm`` (the baseline)."""

    async def answer(self, task: Task) -> Answer:
        raise NotImplementedError


class OracleSystem(System):
    name, label = "oracle", "oracle (the reference answer)"

    async def answer(self, task: Task) -> Answer:
        if task.kind == "doc":
            return Answer(prompts.postprocess_docstring(task.reference, body_indent(task.code)))
        return Answer(task.reference)


class EmptySystem(System):
    name, label = "empty", "empty (answers nothing)"

    async def answer(self, task: Task) -> Answer:
        return Answer("")


def build_prompt(task: Task, spec: Specialist, completion_format: str | None = None
                 ) -> prompts.Prompt:
    if task.kind == "completion":
        ctx = prompts.CompletionContext(prefix=task.prefix, suffix=task.suffix,
                                        language=task.language, multiline=task.multiline)
        return prompts.completion_prompt(ctx, completion_format or spec.prompt_format,
                                         spec.max_prompt_chars)
    if task.kind == "doc":
        return prompts.doc_prompt(task.code, task.language, spec.max_prompt_chars)
    return prompts.refactor_prompt(task.code, task.instruction, task.language,
                                   spec.max_prompt_chars)


def postprocess(task: Task, raw: str, prompt: prompts.Prompt) -> str:
    if task.kind == "completion":
        return prompts.postprocess_completion(raw, prompt)
    if task.kind == "doc":
        return prompts.postprocess_docstring(raw, body_indent(task.code))
    return prompts.postprocess_refactor(raw, task.code)


class EngineSystem(System):
    """A small model on the engine: the table's specialist, or the untuned base."""

    kind = "local"

    def __init__(self, name: str, client: EngineClient, table: SpecialistsTable,
                 run_id: str | None, *, untuned: bool = False, signals: bool = False):
        self.name, self.client, self.table, self.run_id = name, client, table, run_id
        self.untuned = untuned
        self.signals = signals
        spec = table.for_task("completion")
        base = spec.base if spec.base != "default" else "SmolLM2-135M-Instruct"
        self.label = (f"base (untuned small model {base})" if untuned
                      else f"specialist (small model {base}, adapters: "
                           f"{self._adapters() or 'none — untuned'})")

    def _adapters(self) -> str:
        return ", ".join(f"{s.task}={s.adapter}" for s in self.table.specialists.values()
                         if s.adapter)

    async def answer(self, task: Task) -> Answer:
        spec = self.table.for_task(task.kind)
        prompt = build_prompt(task, spec)
        result = await self.client.complete(spec, prompt, language=task.language,
                                            eval_run_id=self.run_id, logprobs=self.signals,
                                            model="base" if self.untuned else None)
        extra = {}
        if self.signals:
            extra = {"mean_logprob": result.call.mean_logprob,
                     "min_logprob": result.call.min_logprob, "invalid_reason": None}
            if result.ok:
                extra["invalid_reason"] = await validator(task, prompt)(result.text)
        if not result.ok:
            return Answer("", result.call, extra=extra)
        return Answer(postprocess(task, result.text, prompt), result.call, extra=extra)


class BaselineSystem(System):
    kind = "llm"

    def __init__(self, client: BaselineClient, table: SpecialistsTable, run_id: str | None,
                 *, label: str | None = None, signals: bool = False):
        self.name = "baseline"
        self.client, self.table, self.run_id = client, table, run_id
        self.label = label or f"baseline LLM ({client.config.model} at {client.config.url})"
        self.signals = signals

    async def answer(self, task: Task) -> Answer:
        spec = self.table.for_task(task.kind)
        prompt = build_prompt(task, spec)
        reply, raw = await ask(self.client, spec, prompt, language=task.language,
                               eval_run_id=self.run_id)
        extra = {"invalid_reason": None} if self.signals else {}
        if reply.call.status != "ok":
            return Answer("", reply.call, extra=extra)
        if self.signals:
            extra["invalid_reason"] = await validator(task, prompt)(raw)
        return Answer(postprocess(task, raw, prompt), reply.call, extra=extra)


class RoutedSystem(System):
    """Small model first, the baseline when the routing policy says so."""

    kind = "routed"

    def __init__(self, engine: EngineClient, baseline: BaselineClient,
                 table: SpecialistsTable, run_id: str | None, *, routing: dict | None = None,
                 baseline_label: str = ""):
        self.name = "routed"
        self.engine, self.baseline, self.run_id = engine, baseline, run_id
        self.routing = {k: v for k, v in (routing or {}).items() if v is not None}
        self.table = table
        spec = self.spec("completion")
        self.label = (f"routed ({describe_policy(spec)}; escalates to "
                      f"{baseline_label or baseline.config.model})")

    def spec(self, kind: str) -> Specialist:
        return dataclasses.replace(self.table.for_task(kind), **self.routing)

    async def answer(self, task: Task) -> Answer:
        spec = self.spec(task.kind)
        prompt = build_prompt(task, spec)
        routed = await escalation.answer(spec, prompt, engine=self.engine,
                                         baseline=self.baseline,
                                         validate=validator(task, prompt),
                                         language=task.language, eval_run_id=self.run_id)
        text = postprocess(task, routed.text, prompt) if routed.ok else ""
        return Answer(text, routed.call, calls=routed.calls,
                      extra={"source": routed.source,
                             "escalated": float(routed.baseline is not None),
                             "invalid_reason": routed.invalid_reason})


def describe_policy(spec: Specialist) -> str:
    if spec.routing == "on-low-confidence":
        return (f"on-low-confidence: mean log-prob < {spec.min_mean_logprob:g} or a token "
                f"< {spec.min_token_logprob:g}")
    return spec.routing
