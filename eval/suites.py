"""The suites by name, and stratified sampling (``--limit``/``--seed``)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from covey_eval import humaneval, next_edit, stdlib
from covey_eval.tasks import Task


@dataclass(frozen=True)
class Suite:
    name: str
    kind: str
    description: str
    load: Callable[[], tuple[Task, ...]]
    scored_by: str


SUITES = {
    s.name: s for s in (
        Suite("humaneval-sl", "completion", "HumanEval single-line infilling (1,033 tasks)",
              humaneval.single_line, "pass@1 (sandboxed tests), exact match, edit similarity"),
        Suite("humaneval-ml", "completion", "HumanEval multi-line infilling (5,815 tasks)",
              humaneval.multi_line, "pass@1 (sandboxed tests), exact match, edit similarity"),
        Suite("stdlib-fim", "completion", "Fill-in-the-middle in held-out stdlib modules",
              stdlib.fim_tasks, "exact match, edit similarity"),
        Suite("stdlib-doc", "doc", "Docstrings of held-out stdlib functions",
              stdlib.doc_tasks, "ROUGE-L, BLEU, parses, parameters documented"),
        Suite("stdlib-refactor", "refactor",
              "Refactor held-out stdlib functions (behaviour checked by Lib/test)",
              stdlib.refactor_tasks,
              "parses, behaviour preserved (module tests), instruction satisfied, diff size"),
        Suite("next-edit", "next-edit",
              "Next edits in held-out stdlib modules (synthetic: renames, call arguments, "
              "quotes, type hints, and negatives)",
              next_edit.synthetic,
              "exact match of the window, delta-chrF, no-change precision and recall"),
        Suite("next-edit-real", "next-edit",
              "Next edits from the changes between released versions of 14 packages "
              "(eval/data/next_edit_real_sources.json)",
              next_edit.real,
              "exact match of the window, delta-chrF, no-change precision and recall"),
    )
}


class SuiteError(ValueError):
    """An unknown suite or unusable suite options; the message says which."""


def load(name: str, *, limit: int | None = None, seed: int = 0,
         repo_options: dict | None = None) -> list[Task]:
    if name == "repo" or name.startswith("repo:"):
        from covey_eval import repo

        tasks = list(repo.tasks(**(repo_options or {})))
    elif name in SUITES:
        tasks = list(SUITES[name].load())
    else:
        raise SuiteError(f"unknown suite {name!r} (known: {', '.join([*SUITES, 'repo'])})")
    if limit is not None and limit < 0:
        raise SuiteError("--limit must be positive")
    return stratified_sample(tasks, limit, seed)


def stratified_sample(tasks: list[Task], limit: int | None, seed: int) -> list[Task]:
    """``limit`` tasks spread evenly over strata (round-robin over shuffled strata).

    Without a limit, all tasks in their original order. The same seed gives the same
    sample; a larger limit extends a smaller one's strata rather than reshuffling.
    """
    if limit is None or limit >= len(tasks):
        return list(tasks)
    rng = random.Random(seed)
    groups: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        groups[task.stratum].append(task)
    order = sorted(groups)
    rng.shuffle(order)
    for key in order:
        rng.shuffle(groups[key])
    picked: list[Task] = []
    depth = 0
    while len(picked) < limit:
        for key in order:
            if depth < len(groups[key]):
                picked.append(groups[key][depth])
                if len(picked) == limit:
                    break
        depth += 1
    return picked
