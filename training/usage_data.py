"""Training examples from the usage log: suggestions the user accepted and kept, where text
was stored.

Accepted means accepted in full (the server's inferred outcome, or the editor's
``covey.accept`` where no outcome was inferred); kept means no retention check found the
text gone (``retained_*`` is never 0): a suggestion the user took and then deleted teaches
nothing worth learning. Partial accepts are left out: the stored completion is the whole
answer, not the part that was kept.

The log keeps prompt and completion text only when the user opted in; rows without text
(sizes and hashes only) cannot become examples and are counted as skipped. Only rows
whose prompt is in the specialist's own served format are used, so an escalated call to a
baseline model with another format cannot teach the wrong format.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from covey_settings import home
from covey_specialists.tasks import task_module
from covey_specialists.tasks.common import strip_markers
from covey_training.examples import Example
from covey_usage.schema import RETENTION_COLUMNS

log = logging.getLogger("covey.train.usage")


@dataclass
class UsageStats:
    accepted: int = 0
    removed: int = 0
    """Accepted, then gone at a retention check."""
    without_text: int = 0
    other_format: int = 0
    used: int = 0


def accepted_examples(task: str, db_path: Path | None = None) -> tuple[list[Example], UsageStats]:
    """Accepted calls for ``task`` as examples (not yet scrubbed: the dataset scrubs them)."""
    from covey_usage.queries import fetch_calls, open_for_reading

    stats = UsageStats()
    db = open_for_reading(db_path or home.usage_db_path())
    rows = [r for r in fetch_calls(db, task=task, status="ok") if _accepted(r)]
    if db is not None:
        db.close()
    module = task_module(task)
    out = []
    for row in rows:
        stats.accepted += 1
        if any(row.get(column) == 0 for column in RETENTION_COLUMNS):
            stats.removed += 1
            continue
        prompt, completion = row.get("prompt") or "", row.get("completion") or ""
        if not prompt or not completion.strip():
            stats.without_text += 1
            continue
        if not prompt.startswith(module.SERVED_PROMPT_START):
            stats.other_format += 1
            continue
        target = strip_markers(completion).rstrip() + module.END_OF_TARGET
        out.append(Example(task=task, prompt=prompt, target=target, source=f"usage:{row['id']}",
                           meta={"kind": "accepted"}))
    stats.used = len(out)
    log.info("usage log: %s", stats)
    return out, stats


def _accepted(row: dict) -> bool:
    outcome = row.get("outcome")
    return outcome == "accepted" or (outcome is None and row.get("accepted") == 1)
