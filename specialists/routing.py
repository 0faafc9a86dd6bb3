"""Small model first, in one place: the policy's pure decision, the runner that asks the
specialist and, when the policy says so, the baseline LLM, and the router that maps a task
to its specialist for the language server.

Policies, one per specialist (``routing`` in the table):

- ``never``: always the specialist; nothing is ever sent to the baseline;
- ``on-failure``: the baseline when the specialist failed (engine down, error, timeout) or
  its answer failed validation (does not parse, misses parameters, …);
- ``on-low-confidence``: as ``on-failure``, and also when the answer's token log-probs
  fall below the specialist's thresholds (``min_mean_logprob``, ``min_token_logprob``);
- ``always-baseline``: the baseline only.

:func:`escalation` is pure. :class:`Flow` is the order of asking as a state machine:
:func:`answer` drives it with live calls, ``covey eval sweep`` with recorded ones.
:meth:`Router.serve` is the one road every caller takes (the language server, the one-shot
commands, the demo, the eval): plan, :func:`answer`, finish. The runner:

1. ask the specialist (unless the policy is ``always-baseline``), with token log-probs when
   the policy reads them, and hold its call's report until its fate is known;
2. validate its answer (not under ``never``, which must behave as if there were no router);
3. decide; on escalation ask the baseline, and validate its answer too;
4. serve the baseline's answer if it is usable, else the specialist's if it is, else
   nothing (:func:`pick`). A dead baseline therefore degrades to the specialist's valid
   answer, or to silence. Under ``always-baseline`` a dead baseline falls back to asking
   the specialist;
5. a caller's ``withhold`` check may still hide the specialist's served answer (the
   editor's confidence filter, :func:`withhold_reason`).

Every call is reported once: the specialist's row gets status ``escalated`` when the
baseline's answer was served (the baseline's own row, ``source="baseline"``, carries that
cost), ``invalid`` when its answer failed validation and nothing else was served,
``withheld`` (with the reason in ``error``) when ``withhold`` hid it. A baseline exists
only when the user configured its URL; without one every answer is the specialist's,
whatever the policy.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from covey_specialists.baseline import BaselineClient, BaselineReply, ask
from covey_specialists.client import EngineAnswer, EngineClient
from covey_specialists.document import Document, fs_path
from covey_specialists.followup import finish_answer
from covey_specialists.repo_context import Workspace
from covey_specialists.table import Specialist, SpecialistsTable
from covey_specialists.tasks import TaskModule, Where, llm_equivalent_tokens, task_module
from covey_specialists.tasks.common import Edit, EditError, Prompt
from covey_usage.calls import ModelCall

log = logging.getLogger("covey.routing")

FAILED_STATUSES = ("error", "timeout")
ANSWERED_STATUSES = ("ok", "withheld", "invalid", "escalated")
"""A specialist call's final statuses that still hold its whole answer."""


@dataclass(frozen=True)
class Signals:
    """What is known about the specialist's answer."""

    status: str
    """The call's status: ok, error, timeout, …"""
    invalid_reason: str | None = None
    """Why validation rejected the answer; None when it passed (or was not checked)."""
    mean_logprob: float | None = None
    min_logprob: float | None = None


@dataclass(frozen=True)
class Decision:
    escalate: bool
    reason: str


def wants_logprobs(spec: Specialist) -> bool:
    """Whether the policy reads token log-probs."""
    return spec.routing == "on-low-confidence"


def filters_unsure(spec: Specialist) -> bool:
    """Whether ``spec`` hides unsure answers (the caller then asks for log-probs)."""
    return spec.min_show_logprob > -math.inf


def withhold_reason(spec: Specialist, mean_logprob: float | None) -> str | None:
    """Why the specialist's own answer should not be shown: its mean token log-prob is below
    ``min_show_logprob`` (None: show it). An answer without log-probs (an engine that does
    not return them) is shown: the filter cannot judge it.

    Not escalation: ``min_mean_logprob`` asks whether a second opinion from the baseline is
    worth paying for; this asks whether the answer is worth the user's attention at all, and
    it is calibrated on precision against coverage (``covey eval sweep``)."""
    if not filters_unsure(spec) or mean_logprob is None:
        return None
    if mean_logprob < spec.min_show_logprob:
        return (f"unsure: mean log-prob {mean_logprob:.2f} < min_show_logprob "
                f"{spec.min_show_logprob:g}")
    return None


def asks_specialist(spec: Specialist) -> bool:
    return spec.routing != "always-baseline"


def escalation(spec: Specialist, signals: Signals) -> Decision:
    policy = spec.routing
    if policy == "never":
        return Decision(False, "policy never")
    if policy == "always-baseline":
        return Decision(True, "policy always-baseline")
    if signals.status in FAILED_STATUSES:
        return Decision(True, f"specialist {signals.status}")
    if signals.invalid_reason:
        return Decision(True, f"invalid: {signals.invalid_reason}")
    if policy == "on-low-confidence":
        if signals.mean_logprob is not None and signals.mean_logprob < spec.min_mean_logprob:
            return Decision(True, f"low confidence: mean log-prob {signals.mean_logprob:.2f} "
                                  f"< {spec.min_mean_logprob:g}")
        if signals.min_logprob is not None and signals.min_logprob < spec.min_token_logprob:
            return Decision(True, f"low confidence: token log-prob {signals.min_logprob:.2f} "
                                  f"< {spec.min_token_logprob:g}")
    return Decision(False, "specialist answer accepted")


# ------------------------------------------------------------------ the runner

Validate = Callable[[str], "str | None | Awaitable[str | None]"]
"""Raw answer text → why it is unusable, or None. May be async (e.g. running tests)."""
Withhold = Callable[[ModelCall], "str | None"]
"""The specialist's call (with its log-probs) → why its served answer is not shown, or None."""


def validates(spec: Specialist) -> bool:
    """Whether answers are checked: not under ``never``, which must behave as if there were
    no router."""
    return spec.routing != "never"


class Flow:
    """The order of asking, as a state machine: :func:`answer` drives it with live calls,
    ``covey eval sweep`` with recorded ones, so both follow one flow.

    :meth:`next_step` says whom to ask (``specialist``, ``baseline``) or ``done``; the
    caller reports each answer (:meth:`specialist_answered`, :meth:`baseline_answered`);
    :meth:`source` says where the served answer comes from. The specialist is asked first
    unless the policy is ``always-baseline`` with a baseline configured; the baseline when
    :func:`escalation` escalates and one is configured; under ``always-baseline`` an unusable
    baseline falls back to asking the specialist."""

    def __init__(self, spec: Specialist, has_baseline: bool):
        self.spec, self.has_baseline = spec, has_baseline
        self.decision = Decision(True, f"policy {spec.routing}")
        self.specialist_usable: bool | None = None
        self.baseline_usable: bool | None = None
        self.notes: list[str] = []

    @property
    def asked_specialist(self) -> bool:
        return self.specialist_usable is not None

    @property
    def asked_baseline(self) -> bool:
        return self.baseline_usable is not None

    def next_step(self) -> str:
        if not self.asked_specialist and not self.asked_baseline and (
                asks_specialist(self.spec) or not self.has_baseline):
            return "specialist"
        if self.decision.escalate and self.has_baseline and not self.asked_baseline:
            return "baseline"
        if not self.asked_specialist and not self.baseline_usable:
            self.notes.append("baseline unusable under always-baseline; asking the specialist")
            return "specialist"
        return "done"

    def specialist_answered(self, signals: Signals) -> None:
        """``signals.invalid_reason``: the check's verdict (ignored under ``never``)."""
        if not validates(self.spec):
            signals = Signals(signals.status, None, signals.mean_logprob, signals.min_logprob)
        first = not self.asked_baseline
        self.specialist_usable = signals.status == "ok" and signals.invalid_reason is None
        if first:
            self.decision = escalation(self.spec, signals)
            if self.decision.escalate and not self.has_baseline:
                self.notes.append("no baseline configured; the specialist answers")

    def baseline_answered(self, usable: bool) -> None:
        self.baseline_usable = usable

    def source(self) -> str:
        return pick(self.decision, bool(self.specialist_usable),
                    bool(self.asked_baseline and self.baseline_usable))


def pick(decision: Decision, specialist_usable: bool, baseline_usable: bool) -> str:
    """Where the served answer comes from: ``baseline``, ``specialist`` or ``none``."""
    if decision.escalate and baseline_usable:
        return "baseline"
    if specialist_usable:
        return "specialist"
    return "none"


@dataclass
class RoutedAnswer:
    text: str
    """The served answer's raw text (a chat baseline's code already out of its fences), to be
    post-processed as the specialist's would be; empty when nothing is served."""
    source: str
    """``specialist``, ``baseline`` or ``none``."""
    decision: Decision
    specialist: EngineAnswer | None = None
    baseline: BaselineReply | None = None
    invalid_reason: str | None = None
    """Why the specialist's answer failed validation (None: it passed or was not checked)."""
    baseline_invalid_reason: str | None = None
    withheld: str | None = None
    """Why the specialist's answer was hidden by the caller's ``withhold`` check."""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.source != "none"

    @property
    def escalated(self) -> bool:
        return self.source == "baseline"

    @property
    def specialist_answered(self) -> bool:
        """Whether the specialist gave a whole answer, served or not."""
        return self.specialist is not None and \
            self.specialist.call.status in ANSWERED_STATUSES

    @property
    def calls(self) -> list[ModelCall]:
        """The specialist's (its follow-ups after it), then the baseline's."""
        specialist = [self.specialist.call, *self.specialist.followups] \
            if self.specialist is not None else []
        return specialist + ([self.baseline.call] if self.baseline is not None else [])

    @property
    def call(self) -> ModelCall:
        """The served answer's call; when nothing is served, the call that explains why."""
        if self.source == "baseline" or self.specialist is None:
            return self.baseline.call  # type: ignore[union-attr]
        return self.specialist.call

    @property
    def why(self) -> str:
        """One line on why nothing was served (for the user) or where the answer came from."""
        if self.ok:
            return f"{self.source}: {self.decision.reason}"
        parts = []
        if self.specialist is not None:
            s = self.specialist.call
            why = self.withheld or self.invalid_reason or s.error or s.status
            parts.append(f"specialist {why}")
        if self.baseline is not None:
            b = self.baseline.call
            parts.append(f"baseline {self.baseline_invalid_reason or b.error or b.status}")
        return "; ".join(parts) or self.decision.reason



async def _check(validate: Validate | None, text: str) -> str | None:
    if validate is None:
        return None
    try:
        result = validate(text)
        if inspect.isawaitable(result):
            result = await result
    except Exception:  # a broken check must not turn every answer into an escalation
        log.exception("answer validation failed; treating the answer as unchecked")
        return None
    return result


async def answer(spec: Specialist, prompt: Prompt, *, engine: EngineClient,
                 baseline: BaselineClient | None, validate: Validate | None = None,
                 language: str = "", model: str | None = None, max_tokens: int | None = None,
                 eval_run_id: str | None = None, logprobs: bool | None = None,
                 withhold: Withhold | None = None) -> RoutedAnswer:
    """Answer ``prompt`` small-model first under ``spec.routing``; never raises except on
    cancellation. ``logprobs`` forces asking for them (the eval's sweep replays thresholds
    afterwards; the editor's confidence filter reads them); by default they are asked for
    only when the policy reads them. ``withhold`` may hide the specialist's served answer
    (a baseline's answer is never hidden by it)."""
    want_logprobs = wants_logprobs(spec) if logprobs is None else logprobs
    routed = RoutedAnswer("", "none", Decision(True, f"policy {spec.routing}"))
    flow = Flow(spec, baseline is not None)
    try:
        while (step := flow.next_step()) != "done":
            if step == "specialist":
                first = await engine.complete(
                    spec, prompt, language=language, max_tokens=max_tokens,
                    logprobs=want_logprobs, eval_run_id=eval_run_id, model=model, report=False)
                _price_as_baseline(spec, prompt, first)
                comp = await finish_answer(engine, spec, prompt, first, language=language,
                                           model=model, eval_run_id=eval_run_id)
                routed.specialist = comp
                if validates(spec) and comp.ok:
                    routed.invalid_reason = await _check(validate, comp.text)
                flow.specialist_answered(Signals(comp.call.status, routed.invalid_reason,
                                                 comp.call.mean_logprob, comp.call.min_logprob))
            else:
                reply, text = await ask(baseline, spec, prompt, language=language,
                                        eval_run_id=eval_run_id)
                routed.baseline = reply
                if reply.call.status == "ok":
                    routed.baseline_invalid_reason = await _check(validate, text)
                    if routed.baseline_invalid_reason is None:
                        routed.text = text
                flow.baseline_answered(reply.call.status == "ok"
                                       and routed.baseline_invalid_reason is None)
        routed.decision, routed.notes = flow.decision, flow.notes
        routed.source = flow.source()
        if routed.source == "specialist" and withhold is not None:
            routed.withheld = withhold(routed.specialist.call)
            if routed.withheld:
                routed.source = "none"
        if routed.source == "specialist":
            routed.text = routed.specialist.text
        elif routed.source == "none":
            routed.text = ""
    finally:
        _settle(routed, engine)
    if routed.decision.escalate or not routed.ok:
        log.info("%s: %s → %s%s", spec.task, routed.decision.reason, routed.source,
                 "".join(f"; {n}" for n in routed.notes) + ("" if routed.ok
                                                            else f" ({routed.why})"))
    return routed


def _price_as_baseline(spec: Specialist, prompt: Prompt, first: EngineAnswer) -> None:
    """Give the specialist's call, before it is reported and priced, the tokens the baseline
    LLM would be charged for the same answer: its own request built by the task module, and
    the answer (:func:`~covey_specialists.tasks.llm_equivalent_tokens`). A prompt without a
    baseline form, and a call cancelled mid-stream (the client reports it itself), are
    priced by the call's own tokens."""
    sent = first.prompt or prompt  # what the engine saw, cut to its window if need be
    try:
        first.call.llm_prompt_tokens, first.call.llm_completion_tokens = \
            llm_equivalent_tokens(spec, sent, first.text)
    except Exception:  # noqa: BLE001 - any failure: the call's own tokens price it
        log.debug("no LLM-equivalent request for %s", sent.task, exc_info=True)


def _settle(routed: RoutedAnswer, engine: EngineClient) -> None:
    """Give the specialist's call its final status and report it (exactly once)."""
    comp = routed.specialist
    if comp is None or comp.call.status == "cancelled":
        return  # not asked, or already reported by the client on cancellation
    call = comp.call
    if routed.source == "baseline":
        call.status = "escalated"
        call.error = routed.decision.reason + (f" ({call.error})" if call.error else "")
    elif routed.source == "none" and call.status == "ok" and routed.withheld:
        call.status, call.error = "withheld", routed.withheld
    elif routed.source == "none" and call.status == "ok" and routed.invalid_reason:
        call.status, call.error = "invalid", routed.invalid_reason
    engine.report(call)


def answer_check(module: TaskModule, plan, check: Validate | None = None) -> Validate:
    """Raw answer text → why it is unusable, or None: the task's own ``problem`` (what the
    editor checks), then ``check`` on the finished answer's text (e.g. running tests)."""

    async def validate(raw: str) -> str | None:
        found = module.problem(plan, raw)
        if found is None and check is not None:
            found = await _check(check, module.finish(plan, raw).new_text)
        return found

    return validate


# ------------------------------------------------------------------ the router

@dataclass
class Served:
    """What :meth:`Router.serve` got: the plan, the routed answer and the edit it makes."""

    module: TaskModule
    plan: Any
    routed: RoutedAnswer

    @property
    def call(self) -> ModelCall:
        return self.routed.call

    def edit(self) -> Edit:
        """The served answer's edit; EditError saying why nothing is shown."""
        if not self.routed.ok:
            raise EditError(self.routed.why)
        return self.module.finish(self.plan, self.routed.text)

    def shown(self) -> Edit | None:
        """The edit the editor shows, or None."""
        try:
            return self.edit()
        except EditError:
            return None

    def specialist_edit(self) -> Edit | None:
        """The specialist's own answer as an edit, even when it is hidden or not served
        (the eval scores every answer beside what is shown)."""
        if not self.routed.specialist_answered:
            return None
        try:
            return self.module.finish(self.plan, self.routed.specialist.text)
        except EditError:
            return None


class Router:
    def __init__(self, table: SpecialistsTable, client: EngineClient,
                 baseline: BaselineClient | None = None):
        self.table = table
        self.client = client
        self.baseline = baseline
        self.served_models: list[str] = []
        """What the engine serves, from ``/v1/models``; empty until known."""

    def specialist(self, task: str, doc: Document) -> Specialist:
        """The task's specialist for ``doc``: with its workspace's adapter, unless the
        engine is known not to serve that one (loaded since, or by another engine), then
        the general adapter rather than the bare base."""
        spec = self.table.for_task(task, fs_path(doc.uri))
        if self.served_models and spec.served_name not in self.served_models:
            return self.table.for_task(task)
        return spec

    def model_for(self, spec: Specialist) -> str:
        """The specialist's served name; an engine that does not serve it gets its base.

        A remote engine (or a dev one) may serve the base under another name; vLLM lists
        the base model first in ``/v1/models``.
        """
        name = spec.served_name
        if self.served_models and name not in self.served_models:
            log.debug("engine does not serve %r; using %r", name, self.served_models[0])
            return self.served_models[0]
        return name

    async def refresh_models(self) -> bool:
        """Ask the engine what it serves; False when it does not answer."""
        try:
            self.served_models = await self.client.models()
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable now"
            log.info("engine models unavailable: %s", exc)
            return False
        return True

    def plan(self, task: str, doc: Document, where: Where, *, fair_base: bool = False,
             workspace: Workspace | None = None):
        """The task's plan for ``where`` in ``doc`` with the routed specialist, with context
        from ``workspace`` in the specialist's share of the engine's window, counted in the
        engine's tokens where known; raises
        :class:`~covey_specialists.tasks.common.EditError` when there is nothing to ask."""
        spec = self.specialist(task, doc)
        if workspace is not None:
            window = self.client.window
            length = window.max_model_len if window else self.table.engine.max_model_len
            workspace = workspace.with_budget(int(length * spec.repo_context_share),
                                              window.count if window else None)
        return task_module(task).plan(doc, where, spec, fair_base=fair_base,
                                      workspace=workspace)

    async def serve(self, task: str, doc: Document, where: Where, *, fair_base: bool = False,
                    workspace: Workspace | None = None, model: str | None = None,
                    check: Validate | None = None, logprobs: bool | None = None,
                    eval_run_id: str | None = None) -> Served:
        """The one road from a caller to the model: plan, ask small-model first (answers
        checked by the task's ``problem``, then ``check`` on the finished answer's text, e.g.
        the eval running a refactor's tests; the task's unsure answers hidden
        where it shows only sure ones), finish. Raises EditError when planning fails.

        ``model`` overrides the served model (the eval's untuned base), ``fair_base`` sends
        the base's fair prompt; ``logprobs`` asks for them even where nothing reads them."""
        plan = self.plan(task, doc, where, fair_base=fair_base, workspace=workspace)
        return await self.serve_plan(task, plan, model=model, check=check, logprobs=logprobs,
                                     eval_run_id=eval_run_id)

    async def serve_plan(self, task: str, plan, *, model: str | None = None,
                         check: Validate | None = None, logprobs: bool | None = None,
                         eval_run_id: str | None = None) -> Served:
        """:meth:`serve` for a plan already made (a caller that reports a plan's errors
        before it reaches for the engine)."""
        module = task_module(task)
        spec = self.specialist(task, plan.doc)
        if model is None:
            if not self.served_models and spec.routing != "always-baseline":
                await self.refresh_models()
                spec = self.specialist(task, plan.doc)
            model = self.model_for(spec)
        withhold = None
        if module.SHOWS_ONLY_SURE and filters_unsure(spec):
            withhold = lambda call: withhold_reason(spec, call.mean_logprob)  # noqa: E731

        validate = answer_check(module, plan, check)
        routed = await answer(spec, plan.prompt, engine=self.client, baseline=self.baseline,
                              validate=validate, language=plan.doc.language or "", model=model,
                              logprobs=True if withhold is not None else logprobs,
                              withhold=withhold, eval_run_id=eval_run_id)
        return Served(module, plan, routed)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.baseline is not None:
            await self.baseline.aclose()
