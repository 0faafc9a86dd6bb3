"""The workspace index: each module's path and its top-level and class-level definitions
(signature and the first line of the docstring), and its imports, parsed with tree-sitter.

It holds outlines, never whole files, so a workspace of 10,000 files costs a few tens of
megabytes, and it is bounded (:data:`MAX_FILES`, :data:`MAX_FILE_BYTES`). The language
server fills it in the background and keeps it current; the eval and training build one
over a repository folder (:meth:`WorkspaceIndex.scan`) — the same index, so the context
built from it (:mod:`covey_specialists.repo_context`) is the same everywhere.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from covey_specialists.document import Document, language_for

log = logging.getLogger("covey.workspace")

MAX_FILES = 20_000
"""Modules held at most; the scan stops there (a monorepo's vendored trees are skipped
before they count)."""
MAX_FILE_BYTES = 500_000
"""Larger files are generated or data, not code anyone imports by hand."""
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "env", ".env",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist",
    "site-packages", "vendor", "vendored", "_vendor", "third_party", ".covey-home",
    ".eggs", "bower_components",
})
INDEXED = frozenset({"python", "javascript", "typescript"})
MAX_SIGNATURE = 160
_STRING_PREFIX = re.compile(r"^[rRbBuUfF]{0,2}(?=['\"])")


@dataclass(frozen=True)
class Definition:
    name: str
    """``name``, or ``Class.method`` for a class-level definition."""
    kind: str
    """``function``, ``class``, ``method`` or ``variable``."""
    signature: str
    """The header as written, e.g. ``def area(self, r: float) -> float:``."""
    doc: str = ""
    """The first line of its docstring."""


@dataclass(frozen=True)
class Import:
    """One name an import binds in a module: ``from .models import User as U`` binds ``U``
    to module ``.models``, name ``User``; ``import a.b`` binds ``a`` to module ``a``."""

    bound: str
    module: str
    """As written, with leading dots for a relative import (``.models``)."""
    name: str = ""
    """The imported name; empty for a whole module; ``*`` for ``from M import *``."""

    def binds_module(self, target: Outline) -> bool:
        """Whether this import binds the whole module ``target`` it resolved to
        (``import pkg.m``, ``from pkg import m``), not a name defined in it."""
        return not self.name or (target.module.rsplit(".", 1)[-1] == self.name
                                 and target.find(self.name) is None)


@dataclass(frozen=True)
class Outline:
    path: str
    """Relative to its root, with ``/``."""
    module: str
    """Dotted module name (``pkg.sub.mod``; a package's ``__init__`` is ``pkg.sub``)."""
    language: str
    definitions: tuple[Definition, ...]
    imports: tuple[Import, ...]

    def find(self, name: str) -> Definition | None:
        return next((d for d in self.definitions if d.name == name), None)

    def members(self, cls: str) -> list[Definition]:
        return [d for d in self.definitions if d.name.startswith(cls + ".")]


# ----------------------------------------------------------------------------- parsing

def outline(path: str, text: str, language: str) -> Outline:
    """The outline of one file (a file that does not parse still gives what it can)."""
    doc = Document(f"file:///{path}", text, language)
    definitions: list[Definition] = []
    imports: list[Import] = []
    if doc.tree is not None:
        for node in doc.tree.root_node.children:
            _visit(doc, node, "", definitions, imports, language)
    return Outline(path, module_name(path), language, tuple(definitions), tuple(imports))


def module_name(path: str) -> str:
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[-1] in ("__init__", "index"):
        parts.pop()
    return ".".join(parts)


def _visit(doc: Document, node, owner: str, out: list[Definition], imports: list[Import],
           language: str) -> None:
    kind = node.type
    if kind in ("decorated_definition", "export_statement"):
        for child in node.named_children:
            _visit(doc, child, owner, out, imports, language)
        return
    if kind in ("import_statement", "import_from_statement"):
        if not owner:
            imports.extend(_python_imports(doc, node) if language == "python"
                           else _js_imports(doc, node))
        return
    if kind in ("function_definition", "function_declaration",
                "generator_function_declaration", "method_definition",
                "abstract_method_signature"):
        name = _name(doc, node)
        if name:
            out.append(Definition(f"{owner}.{name}" if owner else name,
                                  "method" if owner else "function",
                                  _header(doc, node), _first_doc_line(doc, node)))
        return
    if kind in ("class_definition", "class_declaration", "abstract_class_declaration"):
        name = _name(doc, node)
        if not name or owner:
            return
        out.append(Definition(name, "class", _header(doc, node), _first_doc_line(doc, node)))
        body = node.child_by_field_name("body")
        for child in body.named_children if body is not None else ():
            _visit(doc, child, name, out, imports, language)
        return
    if kind in ("expression_statement", "lexical_declaration", "variable_declaration") \
            and not owner:
        target = _assigned_name(doc, node)
        if target:
            out.append(Definition(target, "variable",
                                  doc.source(node).split("\n", 1)[0][:MAX_SIGNATURE]))


def _name(doc: Document, node) -> str:
    found = node.child_by_field_name("name")
    return doc.source(found) if found is not None else ""


def _header(doc: Document, node) -> str:
    """Up to the body: ``def f(a,\\n b) -> int:`` on one line, however it was wrapped."""
    body = node.child_by_field_name("body")
    end = body.start_byte if body is not None else node.end_byte
    head = doc._data[node.start_byte:end].decode("utf-8", "replace")
    head = " ".join(head.split())
    return head[:MAX_SIGNATURE].rstrip(" {")


def _first_doc_line(doc: Document, node) -> str:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children and \
            first.named_children[0].type == "string":
        text = _STRING_PREFIX.sub("", doc.source(first.named_children[0])).strip("\"' \n")
        return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:120]
    prev = node.prev_named_sibling
    if prev is None and node.parent is not None and node.parent.type == "export_statement":
        prev = node.parent.prev_named_sibling  # /** … */ export function f() {}
    if prev is not None and prev.type == "comment" and doc.source(prev).startswith("/**"):
        lines = [ln.strip(" */") for ln in doc.source(prev).splitlines()]
        return next((ln for ln in lines if ln), "")[:120]
    return ""


def _assigned_name(doc: Document, node) -> str:
    if node.type == "expression_statement":
        child = node.named_children[0] if node.named_children else None
        if child is not None and child.type == "assignment":
            left = child.child_by_field_name("left")
            if left is not None and left.type == "identifier":
                return doc.source(left)
        return ""
    for child in node.named_children:
        if child.type == "variable_declarator":
            name = child.child_by_field_name("name")
            if name is not None and name.type == "identifier":
                return doc.source(name)
    return ""


def _python_imports(doc: Document, node) -> list[Import]:
    out = []
    if node.type == "import_statement":
        for child in node.named_children:
            if child.type == "dotted_name":
                dotted = doc.source(child)
                out.append(Import(dotted.split(".")[0], dotted.split(".")[0]))
            elif child.type == "aliased_import":
                dotted = doc.source(child.child_by_field_name("name"))
                out.append(Import(doc.source(child.child_by_field_name("alias")), dotted))
        return out
    module_node = node.child_by_field_name("module_name")
    module = doc.source(module_node) if module_node is not None else ""
    if any(child.type == "wildcard_import" for child in node.children):
        return [Import("*", module, "*")]  # re-exports every public name of ``module``
    for child in node.children_by_field_name("name"):
        if child.type == "aliased_import":
            name = doc.source(child.child_by_field_name("name"))
            out.append(Import(doc.source(child.child_by_field_name("alias")), module, name))
        else:
            name = doc.source(child)
            out.append(Import(name.split(".")[-1], module, name))
    return out


def _js_imports(doc: Document, node) -> list[Import]:
    source = node.child_by_field_name("source")
    if source is None:
        return []
    module = doc.source(source).strip("'\"`")
    out = []
    stack = [node]
    while stack:
        current = stack.pop()
        for child in current.named_children:
            if child.type == "import_specifier":
                name = doc.source(child.child_by_field_name("name"))
                alias = child.child_by_field_name("alias")
                out.append(Import(doc.source(alias) if alias is not None else name, module,
                                  name))
            elif child.type == "identifier" and current.type == "import_clause":
                out.append(Import(doc.source(child), module, "default"))
            elif child.type == "namespace_import":
                ident = next((c for c in child.named_children if c.type == "identifier"), None)
                if ident is not None:
                    out.append(Import(doc.source(ident), module))
            elif child.type in ("import_clause", "named_imports"):
                stack.append(child)
    return out


# ----------------------------------------------------------------------------- the index

@dataclass
class WorkspaceIndex:
    """Outlines of a workspace's modules, by path and by dotted module name.

    Thread-safe: the language server scans in a worker thread while completions read."""

    roots: list[Path] = field(default_factory=list)
    max_files: int = MAX_FILES
    _by_path: dict[str, Outline] = field(default_factory=dict)
    _by_module: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __len__(self) -> int:
        return len(self._by_path)

    def key(self, path: Path | str) -> str | None:
        """The index's key for a file: its path relative to the root that holds it."""
        path = Path(path)
        for root in self.roots:
            try:
                return path.resolve().relative_to(root.resolve()).as_posix()
            except (ValueError, OSError):
                continue
        return None

    def add_text(self, key: str, text: str, language: str | None = None) -> Outline | None:
        """Index (or re-index) ``key`` from ``text``; None for a language not indexed, or
        when the index is full and ``key`` is new."""
        language = language or language_for(None, key)
        if language not in INDEXED or len(text) > MAX_FILE_BYTES:
            return None
        found = outline(key, text, language)
        with self._lock:
            if key not in self._by_path and len(self._by_path) >= self.max_files:
                return None
            self._by_path[key] = found
            self._by_module[found.module] = key
        return found

    def add_file(self, path: Path, key: str | None = None) -> Outline | None:
        """Index a file on disk; None (and nothing indexed) when it cannot be read, is
        binary, too large or not a language the index knows."""
        key = key or self.key(path)
        if key is None or language_for(None, key) not in INDEXED:
            return None
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                return None
            data = path.read_bytes()
        except OSError as exc:
            log.debug("cannot index %s: %s", path, exc)
            return None
        if b"\x00" in data[:8192]:
            return None
        return self.add_text(key, data.decode("utf-8", "replace"))

    def remove(self, key: str) -> None:
        with self._lock:
            found = self._by_path.pop(key, None)
            if found is not None and self._by_module.get(found.module) == key:
                del self._by_module[found.module]

    def remove_under(self, prefix: str) -> int:
        """Forget every module under folder ``prefix`` (a deleted folder); how many."""
        prefix = prefix.rstrip("/") + "/"
        with self._lock:
            keys = [k for k in self._by_path if k.startswith(prefix)]
        for key in keys:
            self.remove(key)
        return len(keys)

    def get(self, key: str) -> Outline | None:
        return self._by_path.get(key)

    def module(self, dotted: str) -> Outline | None:
        """The outline of module ``dotted``, also when the workspace folder is the package
        itself or lies above a ``src/`` folder (``pkg.models`` found as ``models`` or
        ``src/pkg/models``)."""
        key = self._by_module.get(dotted)
        if key is None:
            key = self._by_module.get(f"src.{dotted}")
        head, _, rest = dotted.partition(".")
        if key is None and rest and head in {root.name for root in self.roots}:
            key = self._by_module.get(rest)  # the workspace folder is package ``head``
        return self._by_path.get(key) if key is not None else None

    def resolve(self, importer: Outline | str, imp: Import) -> Outline | None:
        """The workspace module an import in ``importer`` (an outline or its key) names, or
        None when it names something outside the workspace."""
        importer_key = importer if isinstance(importer, str) else importer.path
        module = imp.module
        if module.startswith(("./", "../")):  # JavaScript relative import
            target = os.path.normpath(PurePosixPath(importer_key).parent / module)
            candidates = [module_name(target + ext) for ext in ("", ".js", ".ts")]
        elif module.startswith("."):  # Python relative import
            dots = len(module) - len(module.lstrip("."))
            base = PurePosixPath(importer_key).parent
            for _ in range(dots - 1):
                base = base.parent
            rest = module.lstrip(".")
            dotted = ".".join([*base.parts, *(rest.split(".") if rest else [])])
            candidates = [dotted]
        else:
            candidates = [module]
        if imp.name and not module.startswith(("./", "../")):
            candidates.insert(0, f"{candidates[0]}.{imp.name}" if candidates[0] else imp.name)
        for dotted in candidates:
            found = self.module(dotted)
            if found is not None:
                return found
        return None

    def definition(self, module: Outline, name: str,
                   hops: int = 3) -> tuple[Outline, Definition] | None:
        """Where ``name``, as ``module`` exports it, is defined: in ``module`` itself, or
        through what it re-exports (``from .api import load`` or ``from .core import *`` in
        a package's ``__init__``), followed at most ``hops`` imports deep."""
        found = module.find(name)
        if found is not None:
            return module, found
        if hops <= 0:
            return None
        for imp in module.imports:
            if (imp.bound == name and imp.name) or imp.name == "*":
                target = self.resolve(module, Import(imp.bound, imp.module,
                                                     "" if imp.name == "*" else imp.name))
                if target is None or target.path == module.path:
                    continue
                hit = self.definition(target, name if imp.name == "*" else imp.name,
                                      hops - 1)
                if hit is not None:
                    return hit
        return None

    # --------------------------------------------------------------------- scanning

    def scan(self, root: Path, *, should_stop=lambda: False) -> Iterator[str]:
        """Index every code file under ``root`` (added to :attr:`roots`), yielding each key
        as it goes; skips what :func:`walk` skips."""
        root = Path(root)
        if root not in self.roots:
            self.roots.append(root)
        for path in walk(root, should_stop=should_stop):
            if len(self) >= self.max_files:
                log.info("workspace index full (%d modules); the rest of %s is not indexed",
                         self.max_files, root)
                return
            key = path.relative_to(root).as_posix()
            if self.add_file(path, key) is not None:
                yield key


def scannable(root: Path) -> bool:
    """Not the filesystem's root, the home folder or the temporary folder itself: an editor
    started outside a project (Neovim falls back to the current folder) must not read a
    disk's worth of unrelated files."""
    try:
        resolved = root.resolve()
        unrelated = {Path.home().resolve(), Path(tempfile.gettempdir()).resolve()}
    except (OSError, RuntimeError):
        return False
    return resolved.parent != resolved and resolved not in unrelated


def walk(root: Path, *, should_stop=lambda: False) -> Iterator[Path]:
    """Code files under ``root``: not in skipped or hidden folders, not ignored by the
    ``.gitignore`` files on the way (simple patterns: names, globs, folders), no symlinked
    folders (no loops), unreadable folders skipped, only regular files (a named pipe called
    ``x.py`` would block the read forever)."""
    root = Path(root)
    stack = [(root, _gitignore(root))]
    while stack:
        folder, ignored = stack.pop()
        if should_stop():
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:  # unreadable, or deleted while we walk
            log.debug("cannot list %s: %s", folder, exc)
            continue
        for entry in entries:
            name = entry.name
            rel = Path(entry.path).relative_to(root).as_posix()
            try:
                if entry.is_symlink():
                    continue
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()  # not a FIFO: reading one blocks
            except OSError:
                continue
            if _ignored(rel, name, is_dir, ignored):
                continue
            if is_dir:
                if name in SKIP_DIRS or name.startswith(".") or name.endswith(".egg-info"):
                    continue
                stack.append((Path(entry.path), ignored + _gitignore(Path(entry.path), rel)))
            elif is_file and language_for(None, name) in INDEXED:
                yield Path(entry.path)


def _gitignore(folder: Path, rel: str = "") -> list[tuple[str, str]]:
    """(folder it applies under, pattern) for each line of ``folder``'s .gitignore."""
    try:
        lines = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [(rel, line.strip()) for line in lines
            if line.strip() and not line.startswith(("#", "!"))]


def _ignored(rel: str, name: str, is_dir: bool, patterns: list[tuple[str, str]]) -> bool:
    for base, pattern in patterns:
        if base and not rel.startswith(base + "/"):
            continue
        local = rel[len(base) + 1:] if base else rel
        dir_only = pattern.endswith("/")
        pat = pattern.strip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pat:
            if fnmatch.fnmatch(local, pat) or fnmatch.fnmatch(local, pat + "/*"):
                return True
        elif fnmatch.fnmatch(name, pat):
            return True
    return False
