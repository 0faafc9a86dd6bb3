"""The user's recent edits, as the next-edit specialist reads them: whole-line blocks, each
the lines as they were (``before``) and as they are now (``after``), most recent last.

Keystrokes are coalesced: a change that touches or borders the lines of the edit in
progress in its document joins it; a change on any other line closes that edit and opens another.
So renaming a parameter letter by letter is one edit, and the next use renamed a few lines
down is the next. The history is bounded per document and in documents, and an edit over
:data:`MAX_EDIT_CHARS` (a paste, a reformat) is not kept: it says nothing a small model
can carry on.

The same :class:`RecentEdit` is built by the language server (from ``didChange``), by the
training data and by the eval suite, so the specialist is served what it learned from.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass

MAX_EDITS_PER_DOCUMENT = 16
MAX_DOCUMENTS = 32
MAX_EDIT_CHARS = 2000
"""An edit whose lines before or after are longer than this is dropped."""
_sequence = itertools.count()


@dataclass(frozen=True)
class RecentEdit:
    path: str
    """The document's path relative to its workspace root (else its file name)."""
    line: int
    """0-based line of the document where the edit's lines start (now)."""
    before: str
    """The whole lines as they were, each ending in a newline (empty: lines inserted)."""
    after: str
    """The same lines as they are now (empty: lines deleted)."""
    seq: int = 0
    """Order across documents: a later edit has a higher number."""

    @property
    def changed(self) -> bool:
        return self.before != self.after


def implies_more(edit: RecentEdit) -> bool:
    """Whether ``edit`` could imply another: not plain typing, where the lines only grew at
    their end (text added at the end of a line, new lines after it); not a pure deletion of
    whole lines either."""
    if not edit.changed or not edit.after.strip():
        return False
    return not edit.after.startswith(edit.before.rstrip("\n"))


@dataclass
class _Open:
    """The edit in progress in a document: the whole lines at ``start``..``end`` (offsets
    in its current text), which were ``before``."""

    start: int
    end: int
    before: str
    seq: int


class _DocumentEdits:
    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.open: _Open | None = None
        self.done: deque[RecentEdit] = deque(maxlen=MAX_EDITS_PER_DOCUMENT)

    def change(self, start: int, end: int, new_text: str) -> None:
        """``text[start:end]`` (offsets before the change) became ``new_text``. Offsets and
        ``str.find``, never a split of the whole text: this runs on every keystroke."""
        old = self.text
        start, end = max(0, min(start, end, len(old))), max(0, min(max(start, end), len(old)))
        first = old.rfind("\n", 0, start) + 1
        newline = old.find("\n", end)
        last = len(old) if newline < 0 else newline + 1  # the whole lines it touches
        block = self.open
        if block is not None and first < block.end and last > block.start:
            # within the lines of the edit in progress: it grows by the unchanged lines it
            # now covers, which are still as they were
            block.before = old[first:block.start] + block.before + old[block.end:last]
            block.start, block.end = min(first, block.start), max(last, block.end)
        else:
            self.close()
            block = self.open = _Open(first, last, old[first:last], next(_sequence))
        self.text = old[:start] + new_text + old[end:]
        block.end += len(new_text) - (end - start)
        block.seq = next(_sequence)
        if len(block.before) > MAX_EDIT_CHARS:
            self.open = None  # a paste or a reformat: nothing to carry on

    def current(self) -> RecentEdit | None:
        block = self.open
        if block is None or block.end - block.start > MAX_EDIT_CHARS:
            return None
        return RecentEdit(self.path, self.text.count("\n", 0, block.start), block.before,
                          self.text[block.start:block.end], block.seq)

    def close(self) -> None:
        edit = self.current()
        self.open = None
        if edit is not None and edit.changed:
            self.done.append(edit)

    def edits(self) -> list[RecentEdit]:
        now = self.current()
        return [*self.done, *([now] if now is not None and now.changed else [])]


class EditHistory:
    """Each open document's recent edits (per session, on the event loop)."""

    def __init__(self, max_documents: int = MAX_DOCUMENTS):
        self.max_documents = max_documents
        self._docs: OrderedDict[str, _DocumentEdits] = OrderedDict()

    def opened(self, uri: str, path: str, text: str) -> None:
        """Start following ``uri``; edits it had before it was closed are kept."""
        known = self._docs.get(uri)
        if known is not None:
            known.text, known.open = text, None
            return
        self._docs[uri] = _DocumentEdits(path, text)
        while len(self._docs) > self.max_documents:
            self._docs.popitem(last=False)

    def changed(self, uri: str, span: tuple[int, int] | None, new_text: str) -> None:
        """One content change of ``uri``: ``span`` of the text before it (None: the whole
        text was replaced, which closes the edit in progress) became ``new_text``."""
        doc = self._docs.get(uri)
        if doc is None:
            return
        self._docs.move_to_end(uri)
        if span is None:
            doc.close()
            doc.text = new_text
        else:
            doc.change(*span, new_text)

    def last(self, uri: str) -> RecentEdit | None:
        doc = self._docs.get(uri)
        edits = doc.edits() if doc is not None else []
        return edits[-1] if edits else None

    def recent(self, uri: str | None = None) -> tuple[RecentEdit, ...]:
        """The edits (those in progress too), most recent last: of ``uri`` only, else of
        every followed document."""
        docs = [self._docs[uri]] if uri in self._docs else [] if uri else self._docs.values()
        every = [e for doc in docs for e in doc.edits()]
        return tuple(sorted(every, key=lambda e: e.seq))

    def closed(self, uri: str) -> None:
        """``uri`` was closed: its edits stay in the history, its text goes."""
        doc = self._docs.get(uri)
        if doc is not None:
            doc.close()
            doc.text = ""
