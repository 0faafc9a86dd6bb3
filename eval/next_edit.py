"""The next-edit suites: synthetic edit sequences in held-out stdlib modules, and real ones
from the changes between released versions of licence-checked packages (committed in
``data/``, built by ``scripts/build-next-edit-real.py``; nothing is fetched here)."""

from __future__ import annotations

import ast
import dataclasses
import json
import random
from pathlib import Path

from covey_eval.stdlib import heldout_files, source_text
from covey_eval.tasks import Task
from covey_specialists.tasks.next_edit import window_of
from covey_specialists.tasks.next_edit_sequences import cases

PER_FILE = 4
REAL = Path(__file__).parent / "data" / "next_edit_real.jsonl"
REAL_SOURCES = REAL.with_name("next_edit_real_sources.json")
HELD_OUT_PACKAGES = tuple(s["package"] for s in json.loads(REAL_SOURCES.read_text()))
"""The packages of the real suite: never in any training set (training excludes them)."""


def _task(suite: str, task_id: str, stratum: str, code: str, reference: str, path: str,
          cursor: int, edits: list[dict], **meta) -> Task:
    _, window = window_of(code, code.count("\n", 0, cursor))
    return Task(id=task_id, suite=suite, kind="next-edit", stratum=stratum, code=code,
                reference=reference, meta={"path": path, "cursor": cursor, "window": window,
                                           "edits": edits, **meta})


def synthetic() -> tuple[Task, ...]:
    """Renames, call arguments, quotes, type hints and negatives in held-out modules, as
    training builds them from the training split; stratified by kind."""
    out = []
    for rel in heldout_files():
        text = source_text(rel)
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        rng = random.Random(f"next-edit:{rel}")
        for n, found in enumerate(cases(text, tree, rel, rng, PER_FILE)):
            out.append(_task("next-edit", f"{rel}:{n}:{found.kind}", found.kind, found.text,
                             found.expected, rel, found.cursor,
                             [dataclasses.asdict(e) for e in found.edits]))
    return tuple(out)


def real() -> tuple[Task, ...]:
    """Real changes between released versions (eval/data/next_edit_real_sources.json names
    the packages, versions and licences); stratified by kind: ``real`` (edits due) and
    ``real-lone`` (a lone change: nothing due)."""
    out = []
    for line in REAL.read_text().splitlines():
        row = json.loads(line)
        out.append(_task("next-edit-real", row["id"], row["kind"], row["code"],
                         row["reference"], row["path"], row["cursor"], row["edits"],
                         package=row["package"]))
    return tuple(out)
