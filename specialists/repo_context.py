"""Context from the rest of the repository, for every caller alike (the editor, the one-shot
CLI, the eval and training): one builder, so the adapter learns the context it is served.

Three kinds of snippet, in this order, within a budget counted in the model's tokens:

1. **Definitions in use**: the workspace names the document imports (absolute and relative
   imports, resolved through the :class:`~covey_specialists.workspace.WorkspaceIndex`, and
   through a package's re-exports to where they are defined) that appear near the cursor
   or in the selection, nearest first, then those imported and not used yet: a function's
   signature and the first line of its docstring, a class's header and its methods'
   signatures, a module attribute used as ``module.name``.
2. **Module outlines**: for a whole module used near the cursor (``utils.x``), its other
   top-level names, one header a line, those sharing words with the code near the cursor
   first (the hole may be the first use of one).
3. **Similar chunks** from open and recently edited files (:class:`RecentChunks`, a ring
   buffer), scored by identifier overlap (Jaccard) with the lines before the cursor.

Each snippet carries its path. It is rendered as comments for a model without repository
tokens, or with the model's own file separator where it has one (:func:`render`). The
completion prompt puts the comments just above the top-level statement the cursor is in
(:func:`covey_specialists.tasks.completion.beside_cursor`): they stay the same from
keystroke to keystroke within a function, so vLLM's prefix cache keeps their prefill cheap.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from covey_specialists.document import Document, imports
from covey_specialists.workspace import Definition, Import, Outline, WorkspaceIndex, outline

SHARE_OF_WINDOW = 0.25
"""The default budget: a quarter of the model's context window (512 of SmolLM2's 2,048
tokens). The file's own window keeps the rest with room for the answer; more context
mostly adds prefill time on a CPU, where each 100 tokens cost about 35 ms uncached."""
NEAR_LINES = 30
"""Lines before the cursor (and after it, a third as many) whose names count as in use."""
CHUNK_LINES = 32
RING_CHUNKS = 16
"""llama.vscode's ring buffer: 16 chunks of 64 lines; chunks of 32 lines score sharper on a
small window."""
EVICT_SIMILARITY = 0.9
MIN_SIMILARITY = 0.1
MAX_SIMILAR = 2
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_ATTR = re.compile(r"([A-Za-z_$][\w$]*)\.([A-Za-z_$][\w$]*)")
_PART = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
OUTLINE_LINES = 12
"""Names listed from a module used as ``module.name``: enough to hold the one the cursor
needs most of the time, at about 15 tokens a line."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 3.5) if text else 0


@dataclass(frozen=True)
class Snippet:
    path: str
    lines: tuple[str, ...]
    kind: str
    """``definition``, ``outline`` (a module's names) or ``similar``."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# ----------------------------------------------------------------------------- the ring

class RecentChunks:
    """Chunks of open and recently edited files, newest last; bounded, thread-safe."""

    def __init__(self, capacity: int = RING_CHUNKS, lines: int = CHUNK_LINES):
        self.capacity, self.lines = capacity, lines
        self._chunks: OrderedDict[tuple[str, int], tuple[str, frozenset[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._chunks)

    def add(self, path: str, text: str, line: int) -> None:
        """Remember the chunk of ``text`` around ``line`` (where the user is editing or
        looking). A chunk almost the same as one held replaces it."""
        rows = text.splitlines()
        start = max(0, min(line - self.lines // 2, len(rows) - self.lines))
        chunk = "\n".join(rows[start:start + self.lines])
        words = frozenset(_IDENT.findall(chunk))
        if not words:
            return
        with self._lock:
            for key, (_, held) in list(self._chunks.items()):
                if key[0] == path and _jaccard(words, held) > EVICT_SIMILARITY:
                    del self._chunks[key]
            self._chunks.pop((path, start), None)  # edited again: newest, not evicted first
            self._chunks[(path, start)] = (chunk, words)
            while len(self._chunks) > self.capacity:
                self._chunks.popitem(last=False)

    def forget(self, path: str) -> None:
        with self._lock:
            for key in [k for k in self._chunks if k[0] == path]:
                del self._chunks[key]

    def similar(self, text: str, exclude: str | None, k: int = MAX_SIMILAR) -> list[Snippet]:
        """The ``k`` chunks most like ``text`` (Jaccard over identifiers), not from
        ``exclude``, at least :data:`MIN_SIMILARITY` alike."""
        words = frozenset(_IDENT.findall(text))
        with self._lock:
            scored = [(_jaccard(words, held), key, chunk)
                      for key, (chunk, held) in self._chunks.items() if key[0] != exclude]
        scored.sort(key=lambda s: -s[0])
        return [Snippet(key[0], tuple(chunk.splitlines()), "similar")
                for score, key, chunk in scored[:k] if score >= MIN_SIMILARITY]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


# ----------------------------------------------------------------------------- the builder

@dataclass(frozen=True)
class Workspace:
    """What a plan may read beyond its document."""

    index: WorkspaceIndex | None = None
    recent: RecentChunks | None = None
    key: str | None = None
    """The document's path relative to its workspace root (resolves relative imports)."""
    budget_tokens: int = 512
    count: Callable[[str], int] = field(default=estimate_tokens, compare=False)
    """Tokens of a text, in the served model's tokenizer where known."""

    def with_budget(self, budget_tokens: int, count: Callable[[str], int] | None) -> Workspace:
        return Workspace(self.index, self.recent, self.key, budget_tokens,
                         count or self.count)


def definitions_in_use(doc: Document, start: int, end: int, index: WorkspaceIndex,
                       key: str | None, cursor: int | None = None) -> list[Snippet]:
    """Definitions of the workspace names ``doc`` imports that are used in
    ``doc.text[start:end]``, the ones nearest ``cursor`` (default: ``end``) first; then
    those imported but used nowhere in the file yet (as a whole word: ``S`` is not used by
    ``Spec``); then, for each whole module used there (``utils.x``), an outline of its
    other names. One snippet per definition.

    A name a package re-exports (``from .api import load`` in its ``__init__``) is
    described where it is defined. Names in the import statements themselves are not uses.
    Only the import statements are outlined (kept by the document across keystrokes that
    cannot touch one), not the whole file on every keystroke."""
    if not doc.language:
        return []
    sources = imports(doc)
    if not sources:
        return []
    me = outline(key or "untitled.py", "\n".join(sources), doc.language)
    if not me.imports:
        return []
    spans = [(s, e) for s, e, _ in doc._imports or ()]
    bound = {imp.bound: imp for imp in me.imports if imp.name != "*"}
    window = doc.text[start:end]
    used: list[tuple[int, str, str]] = []  # (distance from the cursor, name, attribute)
    at = (end if cursor is None else cursor) - start

    def in_import(at: int) -> bool:
        return any(s <= start + at < e for s, e in spans)

    for match in _ATTR.finditer(window):
        if match.group(1) in bound and not in_import(match.start()):
            used.append((abs(at - match.start()), match.group(1), match.group(2)))
    for match in _IDENT.finditer(window):
        if match.group(0) in bound and not in_import(match.start()):
            used.append((abs(at - match.start()), match.group(0), ""))
    used.sort()
    # then the names imported and used nowhere yet: the user imported them to use them,
    # and the hole may be their first use
    named = {name for _, name, _ in used}
    used += [(0, name, "") for name in bound
             if name not in named and not _used_outside(doc.text, name, spans)]
    out, seen, modules = [], set(), {}
    for _, name, attr in used:
        imp = bound[name]
        target = index.resolve(key or me.path, imp)
        if target is None or target.path == key:
            continue
        if imp.binds_module(target):
            modules.setdefault(target.path, target)
        hit = _definition(index, target, imp, attr)
        if hit is None or (hit[0].path, hit[1].name) in seen:
            continue
        seen.add((hit[0].path, hit[1].name))
        out.append(Snippet(hit[0].path, _describe(*hit), "definition"))
    words = (frozenset().union(*map(_name_parts, set(_IDENT.findall(window))))
             if modules else frozenset())
    for module in modules.values():
        lines = _module_outline(module, words, {n for p, n in seen if p == module.path})
        if lines:
            out.append(Snippet(module.path, lines, "outline"))
    return out


def _used_outside(text: str, name: str, spans: list[tuple[int, int]]) -> bool:
    """Whether ``name`` occurs in ``text`` as a whole word outside the import statements
    (``spans``). ``str.find`` and a look at both ends: a regular expression scans the
    whole text for a name used nowhere, about 4 ms on a 200 kB file, every keystroke."""
    at = text.find(name)
    while at >= 0:
        end = at + len(name)
        if not (_word_char(text, at - 1) or _word_char(text, end)
                or any(s <= at < e for s, e in spans)):
            return True
        at = text.find(name, end)
    return False


def _word_char(text: str, at: int) -> bool:
    return 0 <= at < len(text) and (text[at].isalnum() or text[at] in "_$")


def _definition(index: WorkspaceIndex, target: Outline, imp: Import,
                attr: str) -> tuple[Outline, Definition] | None:
    """The definition to describe: ``imp.name`` (from-import) or, used as ``name.attr``,
    its method (``User.full_name``); ``attr`` of a module import."""
    if not imp.binds_module(target):
        hit = index.definition(target, imp.name)
        if hit is None:
            return None
        method = hit[0].find(f"{hit[1].name}.{attr}") if attr else None
        return (hit[0], method) if method is not None else hit
    return index.definition(target, attr) if attr else None


def _describe(target: Outline, found: Definition) -> tuple[str, ...]:
    indent = "    " if found.kind == "method" else ""
    lines = [indent + found.signature]
    if found.doc:
        doc = f'"""{found.doc}"""' if target.language == "python" else f"/** {found.doc} */"
        lines.append(f"{indent}    {doc}")
    if found.kind == "class":  # its interface: public methods, how it is made and called
        for member in target.members(found.name):
            method = member.name.rsplit(".", 1)[-1]
            if not method.startswith("_") or method in ("__init__", "__call__"):
                lines.append("    " + member.signature)
    return tuple(lines)


@functools.lru_cache(maxsize=8192)  # the same names come back keystroke after keystroke
def _name_parts(name: str) -> frozenset[str]:
    """The lower-case words of an identifier (``has_varargs``, ``hasVarargs``: has,
    varargs)."""
    return frozenset(w.lower() for w in _PART.findall(name) if len(w) > 1)


def _module_outline(module: Outline, words: frozenset[str],
                    described: set[str]) -> tuple[str, ...]:
    """A module's top-level names as their one-line headers, those whose words the text
    near the cursor shares first, then public before private, at most
    :data:`OUTLINE_LINES`: what ``module.`` can be followed by."""
    ranked = []
    for position, d in enumerate(module.definitions):
        if "." in d.name or d.name in described:
            continue
        shared = len(_name_parts(d.name) & words)
        ranked.append((-shared, d.name.startswith("_"), position, d.signature))
    ranked.sort()
    return tuple(signature for *_, signature in ranked[:OUTLINE_LINES])


def build(doc: Document, start: int, end: int, workspace: Workspace | None, *,
          similar: bool = True, cursor: int | None = None) -> list[Snippet]:
    """The snippets for the text ``doc.text[start:end]`` (a cursor's surroundings, names
    nearest ``cursor`` first; or a selection), within ``workspace.budget_tokens``:
    definitions in use first, then (with ``similar``) similar chunks; empty without a
    workspace."""
    if workspace is None or workspace.budget_tokens <= 0:
        return []
    candidates: list[Snippet] = []
    if workspace.index is not None and len(workspace.index):
        candidates += definitions_in_use(doc, start, end, workspace.index, workspace.key,
                                         cursor)
    if similar and workspace.recent is not None and len(workspace.recent):
        shown = {line.strip() for s in candidates for line in s.lines}
        candidates += [s for s in workspace.recent.similar(doc.text[start:end], workspace.key)
                       if not shown & {line.strip() for line in s.lines}]  # no line twice
    chosen, spent = [], 0
    for snippet in candidates:
        cost = _tokens(workspace.count, render([snippet], "", doc.language or "python"))
        if spent + cost > workspace.budget_tokens:
            continue
        chosen.append(snippet)
        spent += cost
    return chosen


@functools.lru_cache(maxsize=4096)
def _tokens(count: Callable[[str], int], text: str) -> int:
    """A snippet's tokens, counted once: the same snippets come back keystroke after
    keystroke, and a tokenizer call now and then stalls for milliseconds."""
    return count(text)


def near_cursor(doc: Document, offset: int) -> tuple[int, int]:
    """The span whose names count as in use for a cursor at ``offset``."""
    before = doc.text.rfind("\n", 0, offset)
    for _ in range(NEAR_LINES):
        if before <= 0:
            break
        before = doc.text.rfind("\n", 0, before)
    after = offset
    for _ in range(NEAR_LINES // 3):
        nxt = doc.text.find("\n", after + 1)
        if nxt < 0:
            after = len(doc.text)
            break
        after = nxt
    return max(before, 0), after


# ----------------------------------------------------------------------------- rendering

FILE_SEPARATORS = {"fim-qwen": "<|file_sep|>", "fim-starcoder": "<file_sep>"}
"""Formats whose model has a file separator token of its own."""
COMMENT = {"python": "#", "javascript": "//", "typescript": "//"}


def used_definitions(doc: Document, start: int, end: int, workspace: Workspace | None) -> str:
    """The definitions a selection uses, as comment lines under path headers, for a chat
    prompt (docstring, refactor); empty when there are none."""
    return render(build(doc, start, end, workspace, similar=False), "",
                  doc.language or "python")


def render(snippets: list[Snippet], fmt: str, language: str) -> str:
    """The snippets as the model ``fmt`` reads other files: its file separator token and
    the path, or comment lines under a path header; grouped by path, in order."""
    if not snippets:
        return ""
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for snippet in snippets:
        groups.setdefault(snippet.path, []).extend(snippet.lines)
    sep = FILE_SEPARATORS.get(fmt)
    if sep is not None:
        return "".join(f"{sep}{path}\n" + "\n".join(lines) + "\n"
                       for path, lines in groups.items())
    mark = COMMENT.get(language, "#")
    out = []
    for path, lines in groups.items():
        out.append(f"{mark} {path}")
        out += [f"{mark} {line}" for line in lines]
    return "\n".join(out) + "\n"
