"""The checks routing applies to an eval answer before trusting it: the same static checks
as the editor's (:mod:`covey_specialists.validation`), on the task's own file, plus — where
the suite has tests for it — whether a refactor still passes them.
"""

from __future__ import annotations

import asyncio

from covey_eval import scoring, stdlib
from covey_eval.tasks import Task
from covey_specialists import validation
from covey_specialists.escalation import Validate
from covey_specialists.prompts import Prompt


def problem(task: Task, answer: str) -> str | None:
    """Why the post-processed ``answer`` is unusable without running anything, or None."""
    if task.kind == "completion":
        return validation.completion_problem(task.prefix, answer, task.suffix, task.language)
    if task.kind == "doc":
        return validation.docstring_problem(task.code, answer, task.language)
    return validation.refactor_problem(task.code, answer, task.language)


async def behaviour_problem(task: Task, code: str) -> str | None:
    """A refactor that fails the tests of its module (refactor suites that have them)."""
    if task.kind != "refactor" or not task.meta.get("test_module") \
            or scoring.refactor_parse(code) is None:
        return None
    program = stdlib.behaviour_program(task, code)
    outcome = await asyncio.to_thread(scoring.sandbox.run_python, program, scoring.TEST_LIMITS)
    return None if outcome.passed else "changes behaviour: its module's tests fail"


def validator(task: Task, prompt: Prompt) -> Validate:
    """Raw model text → why it is unusable for ``task``, or None (async)."""
    from covey_eval.systems import postprocess

    async def check(raw: str) -> str | None:
        answer = postprocess(task, raw, prompt)
        return problem(task, answer) or await behaviour_problem(task, answer)

    return check
