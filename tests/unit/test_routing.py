"""Routing decisions follow the specialist's policy (pure; the engine-backed tests are in
test_router_escalation.py)."""

from __future__ import annotations

import dataclasses

import pytest

from covey_specialists.routing import Signals, asks_specialist, escalation, wants_logprobs
from covey_specialists.table import Specialist

BASE = Specialist(key="completion", task="completion", min_mean_logprob=-1.0,
                  min_token_logprob=-5.0)
GOOD = Signals("ok", None, mean_logprob=-0.2, min_logprob=-1.0)


def spec(policy: str) -> Specialist:
    return dataclasses.replace(BASE, routing=policy)


@pytest.mark.parametrize("signals", [
    GOOD, Signals("error"), Signals("timeout"), Signals("ok", "does not parse"),
    Signals("ok", None, mean_logprob=-9.0, min_logprob=-20.0),
])
def test_never_keeps_everything_local(signals):
    assert not escalation(spec("never"), signals).escalate


def test_always_baseline_skips_the_specialist():
    assert not asks_specialist(spec("always-baseline"))
    assert escalation(spec("always-baseline"), GOOD).escalate


@pytest.mark.parametrize("signals, escalate, reason", [
    (GOOD, False, "accepted"),
    (Signals("error"), True, "specialist error"),
    (Signals("timeout"), True, "specialist timeout"),
    (Signals("ok", "does not parse"), True, "invalid: does not parse"),
    (Signals("ok", None, mean_logprob=-9.0), False, "accepted"),  # confidence is ignored
])
def test_on_failure(signals, escalate, reason):
    decision = escalation(spec("on-failure"), signals)
    assert decision.escalate is escalate and reason in decision.reason


@pytest.mark.parametrize("signals, escalate, reason", [
    (GOOD, False, "accepted"),
    (Signals("ok", None, mean_logprob=-1.5, min_logprob=-2.0), True, "mean log-prob -1.50"),
    (Signals("ok", None, mean_logprob=-0.5, min_logprob=-7.0), True, "token log-prob -7.00"),
    (Signals("ok", "misses parameter x"), True, "invalid"),
    (Signals("error"), True, "specialist error"),
])
def test_on_low_confidence(signals, escalate, reason):
    decision = escalation(spec("on-low-confidence"), signals)
    assert decision.escalate is escalate and reason in decision.reason


def test_logprobs_requested_only_when_used():
    assert wants_logprobs(spec("on-low-confidence"))
    assert not any(wants_logprobs(spec(p)) for p in ("never", "on-failure", "always-baseline"))


def test_withhold_only_below_the_show_threshold_and_only_when_set():
    from covey_specialists.routing import filters_unsure, withhold_reason

    off = Specialist(key="c")
    assert not filters_unsure(off) and withhold_reason(off, -50.0) is None
    on = Specialist(key="c", min_show_logprob=-1.0)
    assert filters_unsure(on)
    assert withhold_reason(on, -1.0) is None and withhold_reason(on, -0.2) is None
    assert "mean log-prob -1.50 < min_show_logprob -1" in withhold_reason(on, -1.5)
    assert withhold_reason(on, None) is None  # no log-probs: cannot judge, so shown
    assert not wants_logprobs(on)  # the escalation policy does not read it


@pytest.mark.parametrize("value", [0.5, float("nan")])
def test_a_show_threshold_that_is_not_a_logprob_is_refused(tmp_path, value):
    from covey_specialists.table import TableError, load_table

    user = tmp_path / "specialists.toml"
    user.write_text(f"[specialists.completion]\nmin_show_logprob = {value}\n")
    with pytest.raises(TableError, match="min_show_logprob"):
        load_table(user)
