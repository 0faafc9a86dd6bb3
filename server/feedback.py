"""What became of each suggestion the editor was given, inferred from the document changes
that follow it, so every LSP editor reports it (Neovim as much as VS Code):

- text inserted at the cursor that continues the suggestion: one character at a time (or a
  new line and its indent) is the user typing it; more at once is an accept (Tab, or VS
  Code's Accept Next Word and Accept Next Line: an accept in part). Once part of it was
  accepted, a one-character step counts as accepted too: Accept Next Word takes a lone
  space or bracket as a word of its own (VS Code inserted "return", then " ");
- any other edit at the cursor ends it (typed over), as does a new suggestion for the same
  document (superseded) or closing it; ``covey.accept`` and ``covey.reject`` say so outright.

After an accept, the accepted text is looked for at each horizon of
:data:`~covey_usage.schema.RETENTION_COLUMNS` (its span follows the edits around it). It is
retained while its normalised edit distance to what is there now is at most 0.5, as Copilot
measures it. Nothing here is on an edit's path but arithmetic on offsets: the checks are
timers, the distance is computed in a worker thread, and every finding goes to the usage
log's writer queue (``report``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from covey_specialists.tasks.similarity import edit_similarity
from covey_usage.schema import RETENTION_COLUMNS

log = logging.getLogger("covey.feedback")

RETAINED_SIMILARITY = 0.5
"""Retained while 1 − normalised edit distance is at least this."""
MAX_COMPARED = 600
"""Characters of each text compared (the distance is quadratic in them)."""

Report = Callable[[str, dict], None]


@dataclass
class _Shown:
    call_id: str
    anchor: int
    """Where the suggestion starts in the document."""
    text: str
    shown_at: float
    accepted: int = 0
    """Characters of it that went in by an accept."""
    typed: int = 0
    """Characters of it the user typed."""
    commanded: bool = False

    @property
    def cursor(self) -> int:
        return self.anchor + self.accepted + self.typed

    @property
    def rest(self) -> str:
        return self.text[self.accepted + self.typed:]


@dataclass
class _Kept:
    """Accepted text whose retention is still to be checked: its span in the document."""

    call_id: str
    uri: str
    start: int
    end: int
    text: str

    def follow(self, start: int, end: int, delta: int) -> None:
        if end <= self.start and start < self.start:
            self.start += delta
            self.end += delta
        elif start < self.end:  # inside or across the span: it stretches or shrinks
            self.start = min(self.start, start)
            self.end = max(self.end, end) + delta


class Feedback:
    """Follows the suggestions shown in each document and reports their fate."""

    def __init__(self, report: Report, text_of: Callable[[str], str | None],
                 horizons: dict[str, float] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.report = report
        self.text_of = text_of
        """The document's current text by URI, None once it is closed."""
        self.horizons = dict(RETENTION_COLUMNS if horizons is None else horizons)
        self.clock = clock
        self._shown: dict[str, _Shown] = {}
        self._kept: list[_Kept] = []
        self._timers: list[asyncio.TimerHandle] = []

    # ------------------------------------------------------------------ events

    def shown(self, uri: str, call_id: str, offset: int, text: str) -> None:
        """The editor was given ``text`` at ``offset``. The same suggestion served again
        where the user typed into it (the completion cache) goes on being followed."""
        held = self._shown.get(uri)
        if held is not None:
            if held.call_id == call_id and offset == held.cursor:
                return
            self._end(uri, "superseded")
        self._shown[uri] = _Shown(call_id, offset, text, self.clock())
        self.report(call_id, {"shown_at": time.time()})

    def edited(self, uri: str, start: int, end: int, new_text: str) -> None:
        """One edit of the document, in offsets of its text before the edit."""
        delta = len(new_text) - (end - start)
        for kept in self._kept:
            if kept.uri == uri:
                kept.follow(start, end, delta)
        held = self._shown.get(uri)
        if held is None:
            return
        at, rest = held.cursor, held.rest
        if start == end == at and new_text and rest.startswith(new_text):
            step = len(new_text) == 1 or (new_text[0] == "\n" and not new_text.strip())
            if step and not held.accepted:
                held.typed += len(new_text)
            else:
                held.accepted += len(new_text)
            if not held.rest:
                self._end(uri, "")
        elif end == at and start < at and rest and new_text.endswith(rest) \
                and len(new_text) - len(rest) == at - start:
            held.accepted += len(rest)  # a completion item: the word typed, then the rest
            self._end(uri, "")
        elif end < held.anchor:
            held.anchor += delta  # before it: it moves
        elif start <= at:
            self._end(uri, "typed-over")

    def replaced(self, uri: str) -> None:
        """The editor sent the whole text again: nothing can be followed."""
        self._end(uri, "typed-over")
        self._kept = [k for k in self._kept if k.uri != uri]

    def closed(self, uri: str) -> None:
        self._end(uri, "closed")
        self._kept = [k for k in self._kept if k.uri != uri]

    def accepted(self, call_id: str) -> None:
        """``covey.accept``: the editor accepted it (its text may still be on the way)."""
        for held in self._shown.values():
            if held.call_id == call_id:
                held.commanded = True

    def rejected(self, call_id: str) -> None:
        for uri, held in list(self._shown.items()):
            if held.call_id == call_id:
                self._end(uri, "", rejected=True)

    def close(self) -> None:
        for uri in list(self._shown):
            self._end(uri, "closed")
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._kept.clear()

    # ------------------------------------------------------------------ outcomes

    def _end(self, uri: str, why: str, rejected: bool = False) -> None:
        held = self._shown.pop(uri, None)
        if held is None:
            return
        whole = not held.rest
        if rejected and not held.accepted:  # after part was accepted, the rest dismissed
            outcome = "rejected"
        elif held.commanded or (whole and held.accepted):
            outcome = "accepted"
        elif whole:
            outcome = "typed"
        elif held.accepted:
            outcome = "partial"
        else:
            outcome = "ignored"
        accepted = len(held.text) - held.typed if outcome == "accepted" else held.accepted
        inserted = held.text[held.typed:held.typed + accepted] if accepted else ""
        self.report(held.call_id, {
            "outcome": outcome,
            "detail": why if outcome == "ignored" else "rejected" if rejected and
            outcome == "partial" else "",
            "shown_ms": round((self.clock() - held.shown_at) * 1000, 1),
            "accepted_chars": accepted,
            "accepted_lines": inserted.count("\n") + 1 if inserted else 0,
            "typed_chars": held.typed})
        went_in = held.accepted + held.typed
        if held.accepted and went_in:
            self._keep(_Kept(held.call_id, uri, held.anchor, held.anchor + went_in,
                             held.text[:went_in]))

    def _keep(self, kept: _Kept) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a script): nothing can be checked later
        self._kept.append(kept)
        last = max(self.horizons.values(), default=0.0)
        self._timers = [t for t in self._timers if t.when() > loop.time()]  # spent ones go
        for column, delay in self.horizons.items():
            self._timers.append(loop.call_later(delay, self._check, kept, column,
                                                delay == last))

    def _check(self, kept: _Kept, column: str, last: bool) -> None:
        if kept not in self._kept:
            return  # its document was closed or replaced: unknown
        if last:
            self._kept.remove(kept)
        text = self.text_of(kept.uri)
        if text is None:
            return  # closed: unknown
        now = text[kept.start:kept.end]
        done = asyncio.get_running_loop().run_in_executor(
            None, edit_similarity, kept.text[:MAX_COMPARED], now[:MAX_COMPARED])

        def found(future: asyncio.Future) -> None:
            if not future.cancelled() and future.exception() is None:
                self.report(kept.call_id,
                            {column: int(future.result() >= RETAINED_SIMILARITY)})

        done.add_done_callback(found)
