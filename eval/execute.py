"""Running what a task's module says decides an answer's pass/fail, in the sandbox.

Each task module describes the run (:class:`covey_specialists.tasks.common.Run`); this
module knows how to carry out each kind: a whole program, the repository's tests with the
hole filled, or a standard-library module's tests with the refactored function swapped in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from covey_eval import repo, sandbox, stdlib
from covey_eval.tasks import Task
from covey_specialists.routing import Validate, answer_check
from covey_specialists.tasks import task_module
from covey_specialists.tasks.common import Run

HUMANEVAL_LIMITS = sandbox.Limits(cpu_s=3, wall_s=6.0, memory_mb=1024)
TEST_LIMITS = sandbox.Limits(cpu_s=60, wall_s=90.0, memory_mb=2048, nproc=64)
REPO_LIMITS = sandbox.Limits(cpu_s=300, wall_s=600.0, memory_mb=4096, nproc=256)

RUNNERS: dict[str, Callable[[Task, Run, str], sandbox.Outcome]] = {
    "program": lambda task, run, answer: sandbox.run_python(run.program, HUMANEVAL_LIMITS),
    "repo-tests": lambda task, run, answer: repo.run_tests(task, answer, REPO_LIMITS),
    "module-tests": lambda task, run, answer: sandbox.run_python(
        stdlib.behaviour_program(task, answer), TEST_LIMITS),
}
"""How to carry out each kind of run; ``unparsed`` is not here: it fails without running."""


def job(task: Task, answer: str) -> tuple[str, Callable[[], sandbox.Outcome] | None] | None:
    """(metric, what to run) for ``answer``; what to run is None when the answer fails
    without running; None when the task has nothing to run."""
    run = task_module(task.kind).execution(task, answer)
    if run is None:
        return None
    carry_out = RUNNERS.get(run.kind)
    return run.metric, (None if carry_out is None else lambda: carry_out(task, run, answer))


async def run_problem(task: Task, answer: str) -> str | None:
    """A rewrite that fails its module's tests (for routing's check, where the task's module
    asks for running), or None."""
    if not task_module(task.kind).VALIDATE_BY_RUNNING:
        return None
    found = job(task, answer)
    if found is None or found[1] is None:
        return None  # nothing to run, or already refused by the static check
    outcome = await asyncio.to_thread(found[1])
    return None if outcome.passed else "changes behaviour: its module's tests fail"


def run_check(task: Task) -> Validate | None:
    """Finished answer → why it fails when run, for a task whose module validates by
    running (a refactor: its module's tests); None for other tasks. The router applies it
    after the task's own ``problem``."""
    if not task_module(task.kind).VALIDATE_BY_RUNNING:
        return None
    return lambda answer: run_problem(task, answer)


def validator(task: Task, plan) -> Validate:
    """Raw model text → why it is unusable for ``task``, or None (async): the router's own
    check, with the task's tests where it validates by running."""
    return answer_check(task_module(task.kind), plan, run_check(task))
