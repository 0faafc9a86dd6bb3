"""Small-model-first routing: when a specialist's answer should go to the large LLM instead.

Pure decisions from signals, one policy per specialist (``routing`` in the table):

- ``never``: always the specialist; nothing is ever sent to the baseline;
- ``on-failure``: the baseline when the specialist failed (engine down, error, timeout) or
  its answer failed validation (does not parse, misses parameters, …);
- ``on-low-confidence``: as ``on-failure``, and also when the answer's token log-probs
  fall below the specialist's thresholds (``min_mean_logprob``, ``min_token_logprob``);
- ``always-baseline``: the baseline only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from covey_specialists.table import Specialist

FAILED_STATUSES = ("error", "timeout")


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


def decide(spec: Specialist, signals: Signals) -> Decision:
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
