"""Open documents, parsed incrementally with tree-sitter, and the context a model sees.

A :class:`Document` keeps its own text (applying LSP content changes itself, so it knows the
old byte offsets that ``Tree.edit`` needs), a line index, and a syntax tree updated on every
change. The functions below it are pure: they read a document and return plain data.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import tree_sitter
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_typescript

log = logging.getLogger("covey.context")

# LSP language ids → language (the name settings, triggers and definitions key on).
LANGUAGE_IDS = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "typescript",
}
EXTENSIONS = {".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
              ".cjs": "javascript", ".jsx": "javascript", ".ts": "typescript",
              ".mts": "typescript", ".cts": "typescript", ".tsx": "typescript"}

DEFAULT_MAX_PARSE_BYTES = 2_000_000
"""Documents larger than this are tracked but not parsed (a full parse of 10 MB takes seconds)."""


@cache
def grammar(language: str) -> tree_sitter.Language | None:
    if language == "python":
        return tree_sitter.Language(tree_sitter_python.language())
    if language == "javascript":
        return tree_sitter.Language(tree_sitter_javascript.language())
    if language == "typescript":
        return tree_sitter.Language(tree_sitter_typescript.language_typescript())
    if language == "tsx":
        return tree_sitter.Language(tree_sitter_typescript.language_tsx())
    return None


def language_for(language_id: str | None, path: str = "") -> str | None:
    """The grammar for an LSP language id, falling back to the file extension."""
    if language_id and language_id in LANGUAGE_IDS:
        return LANGUAGE_IDS[language_id]
    return EXTENSIONS.get(PurePath(path).suffix.lower()) if path else None


def syntax_for(language: str | None, language_id: str | None = None,
               path: str = "") -> str | None:
    """The grammar that parses a document: its language's, except TSX for TypeScript with
    JSX (language id ``typescriptreact`` or a ``.tsx`` file). TypeScript needs two grammars:
    ``<T>x`` casts parse only without JSX, and JSX only with it."""
    if language == "typescript" and (language_id == "typescriptreact"
                                     or PurePath(path).suffix.lower() == ".tsx"):
        return "tsx"
    return language


def encode(text: str) -> bytes:
    # Lone surrogates can arrive through JSON; keep them byte-for-byte instead of failing.
    return text.encode("utf-8", "surrogatepass")


def utf16_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(2 if ord(c) > 0xFFFF else 1 for c in text)


def column_len(text: str, encoding: str = "utf-16") -> int:
    """Length of ``text`` in the position encoding's units (utf-16, utf-8 or utf-32)."""
    if encoding == "utf-32" or text.isascii():
        return len(text)
    if encoding == "utf-8":
        return len(encode(text))
    return utf16_len(text)


def column_to_index(line: str, units: int, encoding: str = "utf-16") -> int:
    """The code-point index in ``line`` of a column in the position encoding (clamped)."""
    if encoding == "utf-32" or line.isascii():
        return min(units, len(line))
    if encoding == "utf-8":
        return len(encode(line)[:units].decode("utf-8", "ignore"))
    seen = 0
    for i, ch in enumerate(line):
        if seen >= units:
            return i
        seen += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """Lone surrogates (valid JSON, invalid Unicode) become U+FFFD: same length in code
    points and UTF-16 units, so positions do not move, and the text can be encoded."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _line_starts(text: str, base: int = 0) -> list[int]:
    starts = []
    find = text.find
    i = find("\n")
    while i >= 0:
        starts.append(base + i + 1)
        i = find("\n", i + 1)
    return starts


def fs_path(uri: str) -> str | None:
    """The file's path for a ``file:`` URI; None for any other scheme (untitled, remote)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return url2pathname(unquote(parsed.path))


class Document:
    """One open document: text, version, line index and (when supported) a syntax tree."""

    def __init__(self, uri: str, text: str, language: str | None, version: int = 0,
                 max_parse_bytes: int = DEFAULT_MAX_PARSE_BYTES, encoding: str = "utf-16",
                 syntax: str | None = None):
        self.uri = uri
        self.encoding = encoding
        """The LSP position encoding columns are counted in."""
        self.language = language
        self.syntax = syntax or syntax_for(language, None, uri)
        """The grammar's name (see :func:`syntax_for`); ``language`` is what all else keys on."""
        self.version = version
        self.max_parse_bytes = max_parse_bytes
        text = clean(text)
        self.text = text
        self._starts = [0, *_line_starts(text)]
        self._parser: tree_sitter.Parser | None = None
        self._tree: tree_sitter.Tree | None = None
        self._stale = True
        self._data = b""
        self._parsable = self._can_parse()
        self._imports: list[list] | None = None
        """[start, end, source] of each top-level import, kept across edits that cannot
        touch one (see :meth:`_track_imports`); None until read, or after such an edit."""

    # ------------------------------------------------------------------ positions
    @property
    def line_count(self) -> int:
        return len(self._starts)

    def line(self, row: int) -> str:
        """Line ``row`` without its line break."""
        start = self._starts[row]
        end = self._starts[row + 1] - 1 if row + 1 < len(self._starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def offset_at(self, row: int, col: int, *, clamp: bool = True) -> int | None:
        """The string index of an LSP position; ``None`` when out of range and not clamping."""
        if row < 0 or col < 0:
            if not clamp:
                return None
            row, col = max(row, 0), max(col, 0)
        if row >= len(self._starts):
            return None if not clamp else len(self.text)
        line = self.line(row)
        if not clamp and col > column_len(line, self.encoding):
            return None
        return self._starts[row] + column_to_index(line, col, self.encoding)

    def position_at(self, offset: int) -> tuple[int, int]:
        """The LSP position (row, column in the position encoding) of a string index."""
        row = bisect_right(self._starts, offset) - 1
        return row, column_len(self.text[self._starts[row]:offset], self.encoding)

    def byte_at(self, offset: int) -> int:
        if self.text.isascii():
            return offset
        return len(encode(self.text[:offset]))

    def _point(self, offset: int) -> tuple[int, int]:
        row = bisect_right(self._starts, offset) - 1
        return row, len(encode(self.text[self._starts[row]:offset]))

    def snapshot(self) -> Document:
        """A frozen copy (text, index and tree) for work that outlives the next keystroke."""
        copy = Document.__new__(Document)
        copy.__dict__.update(self.__dict__)
        copy._starts = list(self._starts)
        copy._imports = None if self._imports is None else [list(e) for e in self._imports]
        tree = self.tree  # brings the tree up to date first
        copy._tree = tree.copy() if tree is not None else None
        copy._parser = None
        return copy

    # ------------------------------------------------------------------ changes
    def replace(self, start: int, end: int, new_text: str) -> tuple[int, int]:
        """Replace ``text[start:end]`` and update the line index and the tree incrementally;
        returns the span replaced, within the text."""
        new_text = clean(new_text)
        start, end = max(0, min(start, len(self.text))), max(0, min(end, len(self.text)))
        start, end = min(start, end), max(start, end)
        edit = None
        if self._tree is not None:
            start_byte, start_point = self.byte_at(start), self._point(start)
            old_end_byte = start_byte + len(encode(self.text[start:end]))
            old_end_point = self._point(end)
            new_bytes = encode(new_text)
            if "\n" in new_text:
                last = new_text.rsplit("\n", 1)[1]
                new_end_point = (start_point[0] + new_text.count("\n"), len(encode(last)))
            else:
                new_end_point = (start_point[0], start_point[1] + len(new_bytes))
            edit = dict(start_byte=start_byte, old_end_byte=old_end_byte,
                        new_end_byte=start_byte + len(new_bytes), start_point=start_point,
                        old_end_point=old_end_point, new_end_point=new_end_point)
        self._track_imports(start, end, new_text)
        self._update_index(start, end, new_text)
        self.text = self.text[:start] + new_text + self.text[end:]
        if edit is not None and self._tree is not None:
            self._tree.edit(**edit)
        self._stale = True
        return start, end

    def _track_imports(self, start: int, end: int, new_text: str) -> None:
        """Keep the import list when an edit cannot have changed it: no line it touches
        (before or after) mentions ``import`` or lies inside an import statement. Listing
        a large file's top-level nodes per keystroke cost more than the edit itself."""
        if self._imports is None:
            return
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", end)
        line_end = len(self.text) if line_end < 0 else line_end
        before = self.text[line_start:line_end]
        after = self.text[line_start:start] + new_text + self.text[end:line_end]
        if "import" in before or "import" in after or any(
                s <= line_end and line_start <= e for s, e, _ in self._imports):
            self._imports = None
            return
        delta = len(new_text) - (end - start)
        for entry in self._imports:
            if entry[0] >= end:
                entry[0] += delta
                entry[1] += delta

    def _update_index(self, start: int, end: int, new_text: str) -> None:
        first = bisect_right(self._starts, start)  # index of the first line start after `start`
        last = bisect_right(self._starts, end)
        delta = len(new_text) - (end - start)
        inserted = _line_starts(new_text, start)
        tail = self._starts[last:]
        if delta:
            tail = [s + delta for s in tail]
        self._starts[first:] = inserted + tail

    def apply_change(self, change) -> tuple[int, int] | None:
        """Apply one LSP content change (a ranged edit or a whole-document replacement);
        returns the span it replaced (string offsets before the edit), None for the whole
        text."""
        rng = getattr(change, "range", None)
        if rng is None:
            self.set_text(change.text)
            return None
        start = self.offset_at(rng.start.line, rng.start.character)
        end = self.offset_at(rng.end.line, rng.end.character)
        return self.replace(start, end, change.text)

    def set_text(self, text: str) -> None:
        text = clean(text)
        self.text = text
        self._starts = [0, *_line_starts(text)]
        self._tree = None
        self._stale = True
        self._imports = None

    def _can_parse(self) -> bool:
        return grammar(self.syntax) is not None if self.syntax else False

    @property
    def tree(self) -> tree_sitter.Tree | None:
        """The syntax tree, brought up to date on first use after changes.

        Changes only record their edit on the old tree; the (incremental) parse runs when
        something reads the tree, so a burst of keystrokes costs one parse, not one each.
        """
        if self._stale:
            self._reparse()
        return self._tree

    def _reparse(self) -> None:
        self._stale = False
        data = encode(self.text)
        if not self._parsable or len(data) > self.max_parse_bytes:
            self._tree, self._data = None, b""
            return
        if self._parser is None:
            self._parser = tree_sitter.Parser(grammar(self.syntax))
        old = self._tree
        self._tree = self._parser.parse(data, old) if old is not None else self._parser.parse(data)
        self._data = data

    # ------------------------------------------------------------------ queries
    def node_at(self, offset: int) -> tree_sitter.Node | None:
        if self.tree is None:
            return None
        b = self.byte_at(offset)
        return self.tree.root_node.descendant_for_byte_range(b, b)

    def source(self, node: tree_sitter.Node) -> str:
        return self._data[node.start_byte:node.end_byte].decode("utf-8", "replace")

    @property
    def is_binary(self) -> bool:
        return "\x00" in self.text


class DocumentStore:
    """The open documents by URI."""

    def __init__(self, max_parse_bytes: int = DEFAULT_MAX_PARSE_BYTES,
                 encoding: str = "utf-16"):
        self.max_parse_bytes = max_parse_bytes
        self.encoding = encoding
        self._docs: dict[str, Document] = {}

    def open(self, uri: str, text: str, language_id: str | None, version: int = 0) -> Document:
        language = language_for(language_id, uri)
        doc = Document(uri, text, language, version, self.max_parse_bytes, self.encoding,
                       syntax_for(language, language_id, uri))
        self._docs[uri] = doc
        return doc

    def change(self, uri: str, version: int, changes,
               on_edit: Callable[[tuple[int, int] | None, str], None] | None = None,
               ) -> Document | None:
        """Apply ``changes`` in order; ``on_edit`` hears of each: the span it replaced
        (None: the whole text) and its text."""
        doc = self._docs.get(uri)
        if doc is None:
            log.warning("change for a document that is not open: %s", uri)
            return None
        for change in changes:
            span = doc.apply_change(change)
            if on_edit is not None:
                on_edit(span, clean(change.text))
        doc.version = version
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)


# ---------------------------------------------------------------------- context extraction

DEFINITION_TYPES = {
    "python": {"function_definition": "function", "class_definition": "class"},
    "javascript": {"function_declaration": "function", "generator_function_declaration":
                   "function", "method_definition": "function", "class_declaration": "class",
                   "function_expression": "function", "arrow_function": "function"},
}
# TypeScript's grammars name these nodes as JavaScript's does, and add abstract classes.
DEFINITION_TYPES["typescript"] = {**DEFINITION_TYPES["javascript"],
                                  "abstract_class_declaration": "class"}
IMPORT_TYPES = {
    "python": {"import_statement", "import_from_statement", "future_import_statement"},
    "javascript": {"import_statement"},
    "typescript": {"import_statement"},
}


@dataclass(frozen=True)
class Scope:
    """An enclosing function or class."""

    kind: str
    name: str
    start: int
    """String index where the definition starts (decorators excluded)."""
    end: int
    header: str
    """The definition's first line, e.g. ``def area(self, r):``."""


@dataclass(frozen=True)
class CursorContext:
    prefix: str
    suffix: str
    language: str
    scope: Scope | None
    imports: tuple[str, ...]


def enclosing_scopes(doc: Document, offset: int) -> list[Scope]:
    """Functions and classes around ``offset``, innermost first.

    The last non-blank character before the cursor decides, so a cursor in the trailing
    whitespace of a definition (where one types its next line) is still inside it.
    """
    anchor = len(doc.text[:offset].rstrip()) - 1
    node = doc.node_at(max(anchor, 0))
    kinds = DEFINITION_TYPES.get(doc.language or "", {})
    scopes = []
    while node is not None:
        if node.type in kinds:
            scopes.append(_scope(doc, node, kinds[node.type]))
        node = node.parent
    return scopes


def _scope(doc: Document, node: tree_sitter.Node, kind: str) -> Scope:
    name_node = node.child_by_field_name("name")
    name = doc.source(name_node) if name_node is not None else "<anonymous>"
    text = doc.source(node)
    start = offset_of_byte(doc, node.start_byte)
    end = offset_of_byte(doc, node.end_byte)
    return Scope(kind, name, start, end, text.split("\n", 1)[0])


def offset_of_byte(doc: Document, byte: int) -> int:
    if doc.text.isascii():
        return byte
    return len(doc._data[:byte].decode("utf-8", "replace"))


def imports(doc: Document) -> tuple[str, ...]:
    """Top-level import statements, in order."""
    if doc.tree is None:
        return ()
    if doc._imports is None:
        kinds = IMPORT_TYPES.get(doc.language or "", set())
        nodes = [n for n in doc.tree.root_node.children if n.type in kinds]
        doc._imports = [[offset_of_byte(doc, n.start_byte), offset_of_byte(doc, n.end_byte),
                         doc.source(n)] for n in nodes]
    return tuple(source for _, _, source in doc._imports)


def cursor_context(doc: Document, offset: int, budget: int) -> CursorContext:
    """Prefix/suffix windows within ``budget`` characters, plus scope and imports.

    Three quarters of the budget go to the text before the cursor. When the window does not
    reach back to the imports or the enclosing definition's header, those are put in front
    of it (they are what a model most needs to see and what a window most often cuts off).
    """
    scopes = enclosing_scopes(doc, offset)
    scope = scopes[0] if scopes else None
    imps = imports(doc)
    suffix_budget = min(len(doc.text) - offset, budget // 4)
    prefix_budget = budget - suffix_budget
    window_start = max(0, offset - prefix_budget)
    header = []
    if window_start > 0:
        header += [i for i in imps if i not in doc.text[window_start:offset]]
        header += [s.header for s in reversed(scopes) if s.start < window_start]
    head = "\n".join(header)
    if head:
        head += "\n"
        window_start = max(window_start, offset - max(0, prefix_budget - len(head)))
        if len(head) > prefix_budget // 2:  # keep the cursor's own surroundings first
            head = ""
    prefix = doc.text[window_start:offset]
    if window_start > 0 and "\n" in prefix:
        prefix = prefix[prefix.index("\n") + 1:]  # start at a line boundary
    suffix = doc.text[offset:offset + suffix_budget]
    if offset + suffix_budget < len(doc.text) and "\n" in suffix:
        suffix = suffix[: suffix.rindex("\n") + 1]
    return CursorContext(head + prefix, suffix, doc.language or "", scope, imps)
