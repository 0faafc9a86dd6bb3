"""What became of each next edit the editor was given, from the document changes that
follow it: applied as proposed, whether as the edit or as the ghost text it was offered as
(accepted), dismissed (``covey.reject``), or any other change to the document, a newer next
edit or closing it (ignored). Reported to the usage log as completion's outcomes are
(``outcome``, ``shown_ms``, ``accepted_chars`` …).

A next edit that only inserts text at the cursor is also inline completion's answer there
(:meth:`NextEditOutcomes.insertion_at`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from covey_specialists.tasks.common import Edit

Report = Callable[[str, dict], None]


@dataclass
class _Pending:
    call_id: str
    edit: Edit
    old: str
    """The text the edit replaces."""
    shown_at: float


class NextEditOutcomes:
    def __init__(self, report: Report, clock: Callable[[], float] = time.monotonic):
        self.report = report
        self.clock = clock
        self._pending: dict[str, _Pending] = {}

    def shown(self, uri: str, call_id: str, edit: Edit, old: str) -> None:
        self._end(uri, "ignored", "superseded")
        self._pending[uri] = _Pending(call_id, edit, old, self.clock())
        self.report(call_id, {"shown_at": time.time()})

    def insertion_at(self, uri: str, offset: int) -> tuple[str, str] | None:
        """(text, call id) when the pending next edit of ``uri`` is ``text`` inserted at
        ``offset`` and nothing else."""
        held = self._pending.get(uri)
        if held is None or not held.edit.start <= offset <= held.edit.end:
            return None
        cut = offset - held.edit.start
        head, tail, new = held.old[:cut], held.old[cut:], held.edit.new_text
        if len(new) > len(held.old) and new.startswith(head) and new.endswith(tail):
            return new[cut:len(new) - len(tail)], held.call_id
        return None

    def edited(self, uri: str, start: int, end: int, new_text: str) -> None:
        """One change of the document (offsets before it): the proposed text in place
        (accepted), else any other change (ignored)."""
        held = self._pending.get(uri)
        if held is None:
            return
        first, last = held.edit.start, held.edit.end
        if first <= start <= end <= last and held.edit.new_text == (
                held.old[:start - first] + new_text + held.old[end - first:]):
            self._end(uri, "accepted")
        else:
            self._end(uri, "ignored", "typed-over")

    def rejected(self, call_id: str) -> None:
        for uri, held in list(self._pending.items()):
            if held.call_id == call_id:
                self._end(uri, "rejected")

    def closed(self, uri: str) -> None:
        self._end(uri, "ignored", "closed")

    def _end(self, uri: str, outcome: str, why: str = "") -> None:
        held = self._pending.pop(uri, None)
        if held is None:
            return
        new = held.edit.new_text if outcome == "accepted" else ""
        self.report(held.call_id, {
            "outcome": outcome, "detail": why,
            "shown_ms": round((self.clock() - held.shown_at) * 1000, 1),
            "accepted_chars": len(new), "accepted_lines": new.count("\n") if new else 0,
            "typed_chars": 0})
