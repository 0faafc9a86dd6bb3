"""Load-aware pacing: the configured debounce at an idle engine, the user's pause at a busy one."""

from __future__ import annotations

import asyncio

import pytest

from covey_server.pacing import PAUSE_WAIT_MAX_S, Pacing
from covey_server.scheduler import Scheduler
from covey_usage.calls import ModelCall

BASE = 0.075


def typing(pacing: Pacing, gap: float, keystrokes: int = 10) -> None:
    for n in range(keystrokes):
        pacing.request(now=100.0 + n * gap)


def test_an_idle_engine_keeps_the_configured_debounce():
    pacing = Pacing(BASE)
    typing(pacing, 0.2)
    for _ in range(5):
        pacing.answered(0.18)
        pacing.unanswered(0.125)  # superseded mid-word before its first token: no news
    assert pacing.load == 0
    assert pacing.wait_s() == BASE


def test_first_tokens_within_one_gap_are_not_load():
    pacing = Pacing(BASE)
    typing(pacing, 0.2)
    pacing.answered(0.12)
    pacing.answered(0.19)  # a longer prompt, still before the next keystroke
    assert pacing.load == 0


def test_a_busy_engine_waits_for_the_users_pause():
    pacing = Pacing(BASE)
    typing(pacing, 0.2)
    pacing.answered(0.18)
    pacing.unanswered(1.2)  # a line end's call that never answered: at least 1.2 s
    assert pacing.load == 1
    assert pacing.wait_s() == pytest.approx(0.4)  # twice the user's 200 ms gap


def test_a_fixed_debounce_ignores_the_load():
    pacing = Pacing(BASE, adaptive=False)
    typing(pacing, 0.2)
    pacing.answered(0.1)
    pacing.unanswered(5.0)
    assert pacing.wait_s() == BASE


def test_the_pause_follows_the_user_and_is_capped():
    slow, fast = Pacing(0.0), Pacing(0.0)
    typing(slow, 0.9)
    typing(fast, 0.1)
    for pacing in (slow, fast):
        pacing.answered(0.1)
        pacing.answered(2.0)
    assert fast.wait_s() == pytest.approx(0.2)
    assert slow.wait_s() == PAUSE_WAIT_MAX_S


def test_pauses_between_lines_are_not_typing_gaps():
    pacing = Pacing(0.0)
    for start in (0.0, 10.0, 20.0):  # three bursts, seconds apart
        for n in range(3):
            pacing.request(now=start + n * 0.15)
    pacing.answered(0.1)
    pacing.answered(1.0)
    assert pacing.wait_s() == pytest.approx(0.3)


def test_quick_answers_bring_the_wait_back_step_by_step():
    pacing = Pacing(BASE)
    typing(pacing, 0.2)
    pacing.answered(0.15)
    pacing.answered(3.0)
    waits = [pacing.wait_s()]
    for _ in range(30):
        pacing.answered(0.15)
        waits.append(pacing.wait_s())
    assert waits[0] == pytest.approx(0.4)
    assert all(later <= earlier for earlier, later in zip(waits, waits[1:], strict=False))
    assert waits[1] > BASE, "one quick answer does not undo the load at once"
    assert waits[-1] == BASE


def test_a_call_superseded_within_one_gap_is_no_news_and_a_longer_silence_is():
    pacing = Pacing(BASE)
    typing(pacing, 0.2)
    pacing.unanswered(0.125)
    assert pacing.load == 0
    pacing.unanswered(0.45)
    assert pacing.load == 1


def _call(**fields) -> ModelCall:
    return ModelCall(id="c", task=fields.pop("task", "completion"), specialist="completion",
                     model="m", adapter="", base_model="", engine_url="", **fields)


def test_only_completion_calls_to_the_engine_pace_completions():
    pacing = Pacing(BASE)
    pacing.observe(_call(status="ok", ttft_ms=100.0))
    pacing.observe(_call(task="doc", status="ok", ttft_ms=5000.0))
    pacing.observe(_call(status="ok", ttft_ms=5000.0, source="baseline"))
    assert pacing.load == 0
    pacing.observe(_call(status="timeout", latency_ms=10_000.0))
    assert pacing.load == 1


async def test_the_scheduler_calls_the_model_only_at_a_pause_when_loaded():
    async def keystrokes(sched: Scheduler) -> list[str]:
        worked = []

        async def work(name):
            worked.append(name)
            return name

        first = asyncio.ensure_future(sched.run("doc", lambda: work("mid-word")))
        await asyncio.sleep(0.06)  # the next keystroke
        await sched.run("doc", lambda: work("pause"))
        await first
        return worked

    idle = Scheduler(debounce_s=0.01)
    assert await keystrokes(idle) == ["mid-word", "pause"]
    loaded = Scheduler(debounce_s=0.01)
    typing(loaded.pacing, 0.06)
    loaded.pacing.answered(0.05)
    loaded.pacing.unanswered(2.0)
    assert await keystrokes(loaded) == ["pause"]
