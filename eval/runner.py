"""Run one suite against several systems and score every answer.

Model calls go out concurrently (an asyncio semaphore), so the engine can batch them;
systems run one after another, so one system's load never slows another's latencies.
Execution-based scores run afterwards in parallel sandboxes. Every call is reported to the
injected usage log (client ``eval``, the run's id), which also prices it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from covey_eval import execute
from covey_eval.summary import summarise
from covey_eval.systems import Answer, System
from covey_eval.tasks import Task
from covey_specialists.tasks import task_module

ProgressFn = Callable[[str, int, int], None]
ANSWER_CHARS = 4000
RETRY_SHARE = 0.1
"""Timeouts are asked again alone only while they are at most this share of the tasks:
more mean an engine too slow for the concurrency, which the run's note says instead."""


@dataclass
class RunSpec:
    suite: str
    systems: list[str]
    limit: int | None = None
    seed: int = 0
    concurrency: int = 8
    notes: list[str] = field(default_factory=list)
    """Plain statements for the report, e.g. that no baseline endpoint is configured."""

    def meta(self) -> dict:
        return {"name": f"{self.suite} × {', '.join(self.systems)}", "suite": self.suite,
                "systems": self.systems, "limit": self.limit, "seed": self.seed,
                "concurrency": self.concurrency, "notes": self.notes}


async def answer_all(system: System, tasks: list[Task], concurrency: int,
                     progress: ProgressFn | None = None) -> tuple[list[Answer], float]:
    """All answers of one system, at most ``concurrency`` in flight; (answers, wall seconds)."""
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0

    async def one(task: Task) -> Answer:
        nonlocal done
        async with gate:
            answer = await system.answer(task)
        done += 1
        if progress:
            progress(system.name, done, len(tasks))
        return answer

    started = time.perf_counter()
    answers = await asyncio.gather(*(one(t) for t in tasks))
    return list(answers), time.perf_counter() - started


async def ask_timeouts_alone(system: System, tasks: list[Task], answers: list[Answer],
                             concurrency: int) -> str | None:
    """Ask again, one at a time, for the answers that timed out with others in flight, and
    put the new ones in ``answers``; the run's note on it, or None.

    The editor has one request in flight, so the answer asked alone is the one it would
    show. With several in flight each request shares the engine: on one CPU core a
    750-token prompt whose answer runs to 64 tokens takes about 7 s alone and over 10 s
    beside another (``stdlib-fim``, README). Only those answers are asked again; one that
    times out alone too stays a timeout."""
    late = [i for i, a in enumerate(answers) if a.call is not None and a.call.status == "timeout"]
    if concurrency <= 1 or not late:
        return None
    if len(late) > max(1, RETRY_SHARE * len(tasks)):
        return (f"{system.name}: {len(late)} of {len(tasks)} answers timed out with "
                f"{concurrency} in flight, too many to ask again alone: lower --concurrency")
    for i in late:
        answers[i] = await system.answer(tasks[i])
        answers[i].extra["retried_alone"] = True
    again = sum(answers[i].call is not None and answers[i].call.status == "timeout"
                for i in late)
    return (f"{system.name}: {len(late)} answers timed out with {concurrency} in flight and "
            f"were asked again alone, as the editor asks: {len(late) - again} answered, "
            f"{again} timed out again")


def score_all(tasks: list[Task], answers: dict[str, list[Answer]], *,
              workers: int | None = None, progress: ProgressFn | None = None) -> list[dict]:
    """One row per (system, task) with static scores, then execution scores in parallel."""
    rows, jobs = [], []
    for system, system_answers in answers.items():
        for task, answer in zip(tasks, system_answers, strict=True):
            row = {"system": system, "task": task.id, "stratum": task.stratum,
                   "answer": answer.text[:ANSWER_CHARS], **_call_fields(answer)}
            row.update(task_module(task.kind).scores(task, answer.text))
            found = execute.job(task, answer.text)
            if found is not None and found[1] is not None:
                jobs.append((row, *found))
            elif found is not None:
                row[found[0]] = 0.0  # fails without running (e.g. does not parse)
            rows.append(row)
    if jobs:
        workers = workers or 4 * (os.cpu_count() or 1)  # process start-up is mostly waiting
        done = 0

        def run(item: tuple) -> None:
            nonlocal done
            row, metric, job = item
            outcome = job()
            row[metric] = float(outcome.passed)
            row["exec_status"] = outcome.status
            done += 1
            if progress:
                progress("tests", done, len(jobs))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, jobs))
    for task, row in zip(tasks * len(answers), rows, strict=True):
        # scores that need the execution result too (refactor: success)
        row.update(task_module(task.kind).combined_scores(row))
        row.update(shown_scores(row))
    return rows


RIGHT = ("pass@1", "behaviour_preserved", "exact_match")
"""What makes an answer right, the first found on its row: its tests pass, else it matches."""


def right(row: dict) -> float | None:
    for name in RIGHT:
        if row.get(name) is not None:
            return float(row[name] >= 1.0)
    return None


def shown_scores(row: dict) -> dict:
    """What the user meets, for a system that says what the editor would show: ``shown``
    (1 or 0), ``precision`` (right, over shown answers only: None when hidden) and
    ``right_per_hole`` (shown and right)."""
    if row.get("shown") is None or right(row) is None:
        return {}
    ok = right(row)
    return {"precision": ok if row["shown"] else None,
            "right_per_hole": ok * row["shown"]}


def _call_fields(answer: Answer) -> dict:
    """The row's call facts. Calls made one after another (routed, follow-ups) add up:
    latency, tokens; the time to the first token is that of the answer that was served,
    after the calls made before it."""
    calls = answer.all_calls()
    if not calls:
        return {"call_id": None, "call_ids": [], "status": "ok", **answer.extra}
    call = answer.call or calls[-1]
    before = sum(c.latency_ms for c in calls if c.started_at < call.started_at)
    return {"call_id": call.id, "call_ids": [c.id for c in calls], "status": call.status,
            "error": call.error,
            "ttft_ms": None if call.ttft_ms is None else before + call.ttft_ms,
            "latency_ms": sum(c.latency_ms for c in calls),
            "prompt_tokens": sum(c.prompt_tokens for c in calls),
            "completion_tokens": sum(c.completion_tokens for c in calls), **answer.extra}


def add_costs(row: dict, call_costs: dict[str, dict]) -> None:
    """Price a row from its logged calls: local $, LLM-equivalent $ (what the LLM would have
    charged; an escalated call is replaced by the baseline's real charge) and spent $
    (local $ plus what the baseline charged)."""
    costs = [call_costs[i] for i in row.get("call_ids") or () if i in call_costs]
    if not costs:
        return
    local = [c for c in costs if c.get("source") != "baseline"]
    unpriced = any(c["local"] is None for c in local)
    row["local_cost_usd"] = None if unpriced else sum(c["local"] or 0.0 for c in costs)
    row["llm_cost_usd"] = sum(c["llm"] or 0.0 for c in costs if c.get("status") != "escalated")
    row["spent_usd"] = None if unpriced else row["local_cost_usd"] + sum(
        c["llm"] or 0.0 for c in costs if c.get("source") == "baseline")
    if local:
        row["device"] = local[0].get("device") or ""
        row["unpriced"] = unpriced
        energies = [c.get("energy") for c in local]
        row["energy_j"] = None if None in energies else sum(energies)


async def run(spec: RunSpec, tasks: list[Task], systems: list[System], *, run_id: str,
              costs: Callable[[], dict[str, dict]] | None = None,
              progress: ProgressFn | None = None, workers: int | None = None) -> dict:
    """Answer, score and summarise; ``costs`` returns {call_id: {local, llm, source, status}}
    once the calls are logged."""
    answers: dict[str, list[Answer]] = {}
    wall: dict[str, float] = {}
    for system in systems:
        started = time.perf_counter()
        answers[system.name], _ = await answer_all(system, tasks, spec.concurrency, progress)
        note = await ask_timeouts_alone(system, tasks, answers[system.name], spec.concurrency)
        if note:
            spec.notes.append(note)
        wall[system.name] = time.perf_counter() - started
    rows = await asyncio.to_thread(score_all, tasks, answers, workers=workers,
                                   progress=progress)
    call_costs = costs() if costs else {}
    for row in rows:
        add_costs(row, call_costs)
    systems_info = {s.name: {"label": s.label, "kind": s.kind, "wall_s": wall[s.name]}
                    for s in systems}
    return {"run_id": run_id, "meta": spec.meta(), "n_tasks": len(tasks),
            "summary": summarise(rows, systems_info, seed=spec.seed), "rows": rows}
