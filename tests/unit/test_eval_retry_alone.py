"""Answers that time out beside others are asked again alone, as the editor asks.

The system here stands in for an engine shared by the requests in flight: a "long" task
times out whenever another request runs at the same time, and answers when alone. What a
model says is not under test, only the runner's handling of timeouts.
"""

from __future__ import annotations

import asyncio

from covey_eval import runner
from covey_eval.systems import Answer, System
from covey_eval.tasks import Task
from covey_usage.calls import ModelCall, new_call_id


class SharedEngine(System):
    name = "specialist"
    kind = "local"

    def __init__(self, long: set[str], hopeless: set[str] = frozenset()):
        self.long, self.hopeless = long, hopeless
        self.in_flight = 0
        self.asked: list[tuple[str, int]] = []
        """(task, requests in flight beside it at its start) per request."""

    async def answer(self, task: Task) -> Answer:
        self.asked.append((task.id, self.in_flight))
        self.in_flight += 1
        crowded = self.in_flight > 1
        await asyncio.sleep(0.02)
        crowded = crowded or self.in_flight > 1
        self.in_flight -= 1
        call = ModelCall(new_call_id(), "completion", "completion", "completion", "", "", "")
        late = task.id in self.hopeless or (task.id in self.long and crowded)
        call.status = "timeout" if late else "ok"
        return Answer("" if late else task.reference, call)


def tasks(n: int) -> list[Task]:
    return [Task(f"t{i}", "unit", "completion", "s", prefix="x = ", reference=str(i))
            for i in range(n)]


def run(system: System, suite: list[Task], concurrency: int) -> dict:
    spec = runner.RunSpec("unit", [system.name], concurrency=concurrency)
    return asyncio.run(runner.run(spec, suite, [system], run_id="r"))


def test_a_timeout_beside_others_is_asked_again_alone():
    system = SharedEngine(long={"t3", "t7"})
    result = run(system, tasks(20), concurrency=2)

    rows = {r["task"]: r for r in result["rows"]}
    assert [r["status"] for r in rows.values()] == ["ok"] * 20
    assert rows["t3"]["answer"] == "3" and rows["t3"]["retried_alone"] is True
    assert "retried_alone" not in rows["t4"]
    assert [(t, beside) for t, beside in system.asked[20:]] == [("t3", 0), ("t7", 0)]
    assert result["meta"]["notes"] == [
        "specialist: 2 answers timed out with 2 in flight and were asked again alone, as "
        "the editor asks: 2 answered, 0 timed out again"]


def test_a_timeout_alone_too_stays_a_timeout():
    result = run(SharedEngine(long={"t3"}, hopeless={"t5"}), tasks(20), concurrency=2)

    rows = {r["task"]: r for r in result["rows"]}
    assert rows["t5"]["status"] == "timeout" and rows["t5"]["retried_alone"] is True
    assert rows["t3"]["status"] == "ok"
    assert result["meta"]["notes"][0].endswith("1 answered, 1 timed out again")


def test_many_timeouts_are_not_asked_again_and_the_note_says_why():
    system = SharedEngine(long={f"t{i}" for i in range(5)}, hopeless={"t9"})
    result = run(system, tasks(10), concurrency=2)

    assert len(system.asked) == 10  # nothing asked twice
    assert [r["status"] for r in result["rows"]].count("timeout") == 6
    assert result["meta"]["notes"] == [
        "specialist: 6 of 10 answers timed out with 2 in flight, too many to ask again "
        "alone: lower --concurrency"]


def test_one_in_flight_asks_nothing_again():
    system = SharedEngine(long=set(), hopeless={"t9"})
    result = run(system, tasks(10), concurrency=1)

    assert len(system.asked) == 10
    assert result["rows"][9]["status"] == "timeout"
    assert result["meta"]["notes"] == []
