"""Reuse the ghost text on screen instead of asking the model again.

Two cases, both decided on text alone (no model call, no log row):

- **Typing through.** The user types the first characters of the suggestion shown: the rest
  of it is still the answer, so it is served at once. Copilot and Tabby do the same; it is
  where most keystrokes in a completion-heavy session go.
- **Asking again.** The same document, version and position: the last answer is repeated
  (editors re-ask on focus changes, cursor wiggles and re-renders).

An entry is only trusted while the text around the cursor is what the model saw: the window
before the suggestion's anchor and the text after the cursor are compared, not hashed, and
only within the prompt's own window (the model never saw beyond it).
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW = 4000
"""Characters compared on each side of the cursor; at least a prompt's budget."""


@dataclass(frozen=True)
class Shown:
    """A suggestion that was served at ``offset`` of a document."""

    uri: str
    version: int
    offset: int
    text: str
    call_id: str
    before: str
    """The document's text just before ``offset`` (at most WINDOW characters)."""
    after: str
    """The document's text from ``offset`` on (at most WINDOW characters)."""
    length: int
    """The document's length when the suggestion was served."""


@dataclass(frozen=True)
class Hit:
    text: str
    """What is left of the suggestion after what was typed."""
    call_id: str
    typed: int
    """How many of its characters the user has typed since it was served (0: asked again)."""


class CompletionCache:
    """The last suggestion per document and request kind."""

    def __init__(self) -> None:
        self._shown: dict[str, Shown] = {}
        self.hits = 0
        self.misses = 0

    def remember(self, key: str, uri: str, version: int, text: str, offset: int,
                 suggestion: str, call_id: str) -> None:
        if not suggestion:
            self._shown.pop(key, None)
            return
        self._shown[key] = Shown(uri, version, offset, suggestion, call_id,
                                 text[max(0, offset - WINDOW):offset],
                                 text[offset:offset + WINDOW], len(text))

    def lookup(self, key: str, version: int, text: str, offset: int) -> Hit | None:
        """The rest of the shown suggestion if the user typed into it (or asks again)."""
        found = self._match(self._shown.get(key), version, text, offset)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def forget(self, key: str) -> None:
        self._shown.pop(key, None)

    @staticmethod
    def _match(shown: Shown | None, version: int, text: str, offset: int) -> Hit | None:
        if shown is None:
            return None
        typed = offset - shown.offset
        if typed == 0 and version == shown.version and len(text) == shown.length:
            return Hit(shown.text, shown.call_id, 0)
        if not 0 < typed < len(shown.text) or len(text) != shown.length + typed:
            return None  # moved back, typed past the end, or deleted/inserted elsewhere
        if not shown.text.startswith(text[shown.offset:offset]):
            return None  # typed something other than the suggestion
        if text[max(0, shown.offset - WINDOW):shown.offset] != shown.before:
            return None
        if text[offset:offset + len(shown.after)] != shown.after:
            return None
        rest = shown.text[typed:]
        return Hit(rest, shown.call_id, typed) if rest.strip() else None
