"""Small model first: ask the specialist, check its answer, and go to the baseline LLM only
when the specialist's policy says so (``covey_specialists.routing``).

The one runner both the language server's router and the eval's ``routed`` system use:

1. ask the specialist (unless the policy is ``always-baseline``), with token log-probs when
   the policy reads them, and hold its call's report until its fate is known;
2. validate its answer (not under ``never``, which must behave as if there were no router);
3. decide; on escalation ask the baseline, and validate its answer too;
4. serve the baseline's answer if it is usable, else the specialist's if it is, else
   nothing (:func:`pick`). A dead baseline therefore degrades to the specialist's valid
   answer, or to silence. Under ``always-baseline`` a dead baseline falls back to asking
   the specialist;
5. a caller's ``withhold`` check may still hide the specialist's served answer (the
   editor's confidence filter, :func:`covey_specialists.routing.withhold_reason`).

Every call is reported once: the specialist's row gets status ``escalated`` when the
baseline's answer was served (the baseline's own row, ``source="baseline"``, carries that
cost), ``invalid`` when its answer failed validation and nothing else was served,
``withheld`` (with the reason in ``error``) when ``withhold`` hid it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from covey_specialists.baseline import BaselineClient, BaselineReply, ask
from covey_specialists.client import Completion, EngineClient
from covey_specialists.routing import Decision, Signals, asks_specialist, decide, wants_logprobs
from covey_specialists.table import Specialist
from covey_specialists.tasks.common import Prompt
from covey_usage.calls import ModelCall

log = logging.getLogger("covey.escalation")

Validate = Callable[[str], "str | None | Awaitable[str | None]"]
"""Raw answer text → why it is unusable, or None. May be async (e.g. running tests)."""
Withhold = Callable[[ModelCall], "str | None"]
"""The specialist's call (with its log-probs) → why its served answer is not shown, or None."""


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
    specialist: Completion | None = None
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
    def calls(self) -> list[ModelCall]:
        return [c.call for c in (self.specialist, self.baseline) if c is not None]

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

    def as_completion(self) -> Completion:
        """The served answer as an engine :class:`Completion` (status ok) — or, when nothing
        is served, the explaining call (status invalid, error, …) with no text."""
        call = self.call
        finish = self.specialist.finish_reason if self.source == "specialist" else None
        return Completion(text=self.text if self.ok else "", call=call, finish_reason=finish)


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
    policy = spec.routing
    want_logprobs = wants_logprobs(spec) if logprobs is None else logprobs
    routed = RoutedAnswer("", "none", Decision(True, f"policy {policy}"))
    try:
        if asks_specialist(spec) or baseline is None:
            await _ask_specialist(routed, spec, prompt, engine, validate, language, model,
                                  max_tokens, eval_run_id, want_logprobs)
            comp = routed.specialist
            routed.decision = decide(spec, Signals(comp.call.status, routed.invalid_reason,
                                                   comp.call.mean_logprob,
                                                   comp.call.min_logprob))
        if routed.decision.escalate and baseline is None:
            routed.notes.append("no baseline configured; the specialist answers")
        elif routed.decision.escalate:
            reply, text = await ask(baseline, spec, prompt, language=language,
                                    eval_run_id=eval_run_id)
            routed.baseline = reply
            if reply.call.status == "ok":
                routed.baseline_invalid_reason = await _check(validate, text)
                if routed.baseline_invalid_reason is None:
                    routed.text = text
            if routed.specialist is None and not _usable(reply.call,
                                                         routed.baseline_invalid_reason):
                routed.notes.append("baseline unusable under always-baseline; asking the "
                                    "specialist")
                await _ask_specialist(routed, spec, prompt, engine, validate, language, model,
                                      max_tokens, eval_run_id, want_logprobs, check=True)
        routed.source = pick(
            routed.decision,
            routed.specialist is not None and _usable(routed.specialist.call,
                                                      routed.invalid_reason),
            routed.baseline is not None and _usable(routed.baseline.call,
                                                    routed.baseline_invalid_reason))
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


def _usable(call: ModelCall, invalid_reason: str | None) -> bool:
    return call.status == "ok" and invalid_reason is None


async def _ask_specialist(routed: RoutedAnswer, spec: Specialist, prompt: Prompt,
                          engine: EngineClient, validate: Validate | None, language: str,
                          model: str | None, max_tokens: int | None, eval_run_id: str | None,
                          want_logprobs: bool, check: bool | None = None) -> None:
    routed.specialist = await engine.complete(
        spec, prompt, language=language, max_tokens=max_tokens, logprobs=want_logprobs,
        eval_run_id=eval_run_id, model=model, report=False)
    if check is None:
        check = spec.routing != "never"  # ``never`` behaves as if there were no router
    if check and routed.specialist.ok:
        routed.invalid_reason = await _check(validate, routed.specialist.text)


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
