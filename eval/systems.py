"""The systems under evaluation: each turns a task into an answer in the task's edit form.

Answer forms: completion → the middle text; doc → the docstring block as it would be
inserted (indented, triple-quoted); refactor → the rewritten code. Each task's module
(:mod:`covey_specialists.tasks`) builds the prompt and turns the model's text into the
answer; a completion goes through the language server's own plan and finish steps.

- ``oracle`` answers with the reference and ``empty`` with nothing: sanity bounds.
- ``specialist`` calls the engine with the table's specialist (its adapter, if any).
- ``base`` calls the same engine with the untuned base model (``model=base``), prompted
  fairly: a plain continuation of the prefix for completion (it was never taught FIM
  markers), zero-shot chat with the same instruction for doc and refactor.
- ``base-specialist-prompt`` sends the untuned base the specialist's own prompt (FIM
  markers and all): what the adapter adds to the same prompt.
- ``baseline`` calls an OpenAI-compatible LLM endpoint.
- ``routed`` asks the specialist first and escalates to the baseline per the routing policy
  (:mod:`covey_specialists.routing`, the runner the language server uses).

With a workspace (the ``repo`` suite under ``--context repo``) the engine systems plan each
task with the repository context the editor would send (:class:`covey_eval.repo.RepoContext`).

With ``signals`` the specialist and baseline systems also record what routing decides on —
the answer's token log-probs and why validation rejects it — so ``covey eval sweep`` can
replay any threshold over one set of answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from covey_eval.execute import run_check, validator
from covey_eval.tasks import Task
from covey_specialists.baseline import BaselineClient, ask
from covey_specialists.client import EngineClient
from covey_specialists.document import fs_path
from covey_specialists.repo_context import Workspace
from covey_specialists.routing import Router, Served
from covey_specialists.table import Specialist, SpecialistsTable
from covey_specialists.tasks import task_module
from covey_specialists.tasks.common import EditError
from covey_usage.calls import ModelCall

SYSTEM_NAMES = ("specialist", "base", "base-specialist-prompt", "baseline", "routed", "oracle",
                "empty")
UNTUNED = ("base", "base-specialist-prompt")
"""The systems that run the untuned base model on the engine."""
STAND_IN_LABEL = "untuned base standing in for the baseline LLM"
WorkspaceFor = Callable[[Task], Workspace | None]
"""The workspace the editor would have for a task (repository context); None: none."""


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
        return Answer(task_module(task.kind).oracle(task))


class EmptySystem(System):
    name, label = "empty", "empty (answers nothing)"

    async def answer(self, task: Task) -> Answer:
        return Answer("")


def _plan(task: Task, table: SpecialistsTable, workspace: WorkspaceFor | None = None):
    """The task module's plan for ``task`` as the editor makes it, with the editor's
    workspace; None when the editor would refuse to ask (e.g. a selection over the
    refactor's budget)."""
    module = task_module(task.kind)
    doc, where = module.eval_target(task)
    try:
        return module.plan(doc, where, table.for_task(task.kind, fs_path(doc.uri)),
                           workspace=workspace(task) if workspace else None)
    except EditError:
        return None


def _text(edit) -> str:
    return edit.new_text if edit is not None else ""


def _shown(served: Served) -> dict:
    """What the editor would do with the answer: ``shown`` (1.0 or 0.0) and, when nothing
    is shown, why (withheld as unsure, invalid, failed)."""
    edit = served.shown()
    out = {"shown": float(edit is not None)}
    if edit is None:
        out["hidden"] = served.routed.why
    return out


async def _served(router: Router, task: Task, *, run_id: str | None,
                  workspace: WorkspaceFor | None = None, **kwargs) -> Served | Answer:
    """The editor's road for ``task`` (plan, router, finish), with the workspace the editor
    would have for it (``workspace(task)``: repository context); an empty answer that says
    why when the editor would not even ask."""
    module = task_module(task.kind)
    doc, where = module.eval_target(task)
    try:
        return await router.serve(task.kind, doc, where, check=run_check(task),
                                  workspace=workspace(task) if workspace else None,
                                  eval_run_id=run_id, **kwargs)
    except EditError as exc:
        return Answer("", extra={"status": "error", "error": str(exc), "shown": 0.0})


class EngineSystem(System):
    """A small model on the engine through the editor's router (show filter, checks and
    follow-ups included): the table's specialist, or the untuned base (prompted fairly, or
    with the specialist's own prompt).

    The answer scored is the model's own, finished as the editor finishes it, whether or
    not the editor would show it; ``shown`` says whether it would."""

    kind = "local"

    def __init__(self, name: str, client: EngineClient, table: SpecialistsTable,
                 run_id: str | None, *, untuned: bool = False, fair_base: bool = False,
                 signals: bool = False, workspace: WorkspaceFor | None = None):
        self.name, self.client, self.table, self.run_id = name, client, table, run_id
        self.workspace = workspace
        self.router = Router(table, client)
        self.untuned = untuned
        self.fair_base = untuned and fair_base
        self.signals = signals
        spec = table.for_task("completion")
        base = spec.base if spec.base != "default" else "SmolLM2-135M-Instruct"
        prompted = ("prompted fairly: plain continuation, zero-shot chat" if self.fair_base
                    else "sent the specialist's prompts")
        self.label = (f"{name} (untuned small model {base}, {prompted})" if untuned
                      else f"specialist (small model {base}, adapters: "
                           f"{self._adapters() or 'none — untuned'})")

    def _adapters(self) -> str:
        return ", ".join(f"{s.task}={s.adapter}" for s in self.table.specialists.values()
                         if s.adapter)

    async def answer(self, task: Task) -> Answer:
        served = await _served(self.router, task, run_id=self.run_id,
                               workspace=self.workspace, fair_base=self.fair_base,
                               model="base" if self.untuned else None,
                               logprobs=self.signals or None)
        if isinstance(served, Answer):
            return served
        routed, comp = served.routed, served.routed.specialist
        extra = _shown(served)
        if routed.specialist_answered:
            extra["status"] = "ok"  # answered; hidden or not, it is scored
        if self.signals:
            extra.update(mean_logprob=comp.call.mean_logprob if comp else None,
                         min_logprob=comp.call.min_logprob if comp else None,
                         invalid_reason=routed.invalid_reason)
            if routed.specialist_answered and routed.invalid_reason is None:
                extra["invalid_reason"] = await validator(task, served.plan)(comp.text)
        return Answer(_text(served.specialist_edit()), served.call, routed.calls, extra=extra)


class BaselineSystem(System):
    kind = "llm"

    def __init__(self, client: BaselineClient, table: SpecialistsTable, run_id: str | None,
                 *, label: str | None = None, signals: bool = False,
                 workspace: WorkspaceFor | None = None):
        self.name = "baseline"
        self.client, self.table, self.run_id = client, table, run_id
        self.workspace = workspace  # the same context from other files as the small models
        self.label = label or f"baseline LLM ({client.config.model} at {client.config.url})"
        self.signals = signals

    async def answer(self, task: Task) -> Answer:
        planned = _plan(task, self.table, self.workspace)
        if planned is None:
            return Answer("", extra={"status": "error", "shown": 0.0})
        spec = self.table.for_task(task.kind, fs_path(planned.doc.uri))
        reply, raw = await ask(self.client, spec, planned.prompt, language=task.language,
                               eval_run_id=self.run_id)
        extra = {"invalid_reason": None} if self.signals else {}
        if reply.call.status != "ok":
            return Answer("", reply.call, extra={**extra, "shown": 0.0})
        if self.signals:
            extra["invalid_reason"] = await validator(task, planned)(raw)
        try:
            text = task_module(task.kind).finish(planned, raw).new_text
        except EditError:
            text = ""
        return Answer(text, reply.call, extra={**extra, "shown": float(bool(text))})


class RoutedSystem(System):
    """Small model first, the baseline when the routing policy says so: the editor's
    router, with the policy's overrides. The answer scored is the one served."""

    kind = "routed"

    def __init__(self, engine: EngineClient, baseline: BaselineClient,
                 table: SpecialistsTable, run_id: str | None, *, routing: dict | None = None,
                 baseline_label: str = "", workspace: WorkspaceFor | None = None):
        self.name = "routed"
        self.engine, self.baseline, self.run_id = engine, baseline, run_id
        self.workspace = workspace
        self.routing = {k: v for k, v in (routing or {}).items() if v is not None}
        self.table = dataclasses.replace(table, specialists={
            k: dataclasses.replace(v, **self.routing) for k, v in table.specialists.items()})
        self.router = Router(self.table, engine, baseline)
        spec = self.table.for_task("completion")
        self.label = (f"routed ({describe_policy(spec)}; escalates to "
                      f"{baseline_label or baseline.config.model})")

    async def answer(self, task: Task) -> Answer:
        served = await _served(self.router, task, run_id=self.run_id,
                               workspace=self.workspace)
        if isinstance(served, Answer):
            return served
        routed = served.routed
        return Answer(_text(served.shown()), routed.call, calls=routed.calls,
                      extra={"source": routed.source, **_shown(served),
                             "escalated": float(routed.baseline is not None),
                             "invalid_reason": routed.invalid_reason})


def describe_policy(spec: Specialist) -> str:
    if spec.routing == "on-low-confidence":
        return (f"on-low-confidence: mean log-prob < {spec.min_mean_logprob:g} or a token "
                f"< {spec.min_token_logprob:g}")
    return spec.routing
