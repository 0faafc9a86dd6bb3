"""The ``repo`` suite: holes punched in the Python files of any local repository.

Tasks are cut like ``stdlib-fim`` (one single-line and one multi-line hole per function).
With ``test_command`` a candidate is scored by the repository's own tests: the repository
is copied to a temporary directory, the hole is filled, and the command runs there in the
sandbox (no network, limits, timeout). Without it, exact match and edit similarity only.

Cross-file holes, as CrossCodeEval cuts them: a hole is **cross-file** when its reference
uses a name defined in another file of the repository, so the file alone cannot answer
it (:func:`cross_file`). Each task's stratum names both axes (``cross-file/one-line``,
``in-file/multi-line``), and ``holes="cross-file"`` keeps only the cross-file ones.

Repository context (:class:`RepoContext`): the engine systems may be given the workspace
the editor would have: an index of the repository's outlines, built once per run, and
chunks of the files the task's file imports standing in for the editor's open tabs.

The held-out packages (:data:`HELD_OUT_PACKAGES`) are the repositories the cross-file
figures are measured on; training never reads them (``covey_training.packages``), and
``scripts/fetch-heldout-repos.sh`` fetches exactly these versions.
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from covey_eval import sandbox
from covey_eval.stdlib import fim_tasks_in
from covey_eval.tasks import Task
from covey_specialists.repo_context import CHUNK_LINES, RecentChunks, Workspace
from covey_specialists.workspace import Import, Outline, WorkspaceIndex, outline

SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist", ".tox"}
MAX_FILE_BYTES = 200_000
HOLES = ("all", "cross-file")
"""``--holes``: every hole, or only those whose reference uses a name from another file."""
CONTEXTS = ("repo", "none")
"""``--context``: the engine systems get the repository's workspace, or nothing beyond the
file (what the editor sends with no folder open)."""


class HeldOut(NamedTuple):
    version: str
    licence: str


HELD_OUT_PACKAGES: dict[str, HeldOut] = {
    "marshmallow": HeldOut("4.4.0", "MIT"),
    "tomlkit": HeldOut("0.15.3", "MIT"),
    "toolz": HeldOut("1.2.0", "BSD-3-Clause"),
    "glom": HeldOut("25.12.0", "BSD-3-Clause"),
    "boltons": HeldOut("26.2.0", "BSD-3-Clause"),
}
"""The repositories the cross-file eval is measured on, by PyPI name: exact versions
(their sdists carry the source and tests) and the licence their metadata names. Pure
Python, permissively licensed, with real imports between their modules, and none of them
among the completion adapter's training sources; ``covey_training.packages`` excludes
them by name, so training can never read them."""


class RepoError(ValueError):
    """A repository path or test command that cannot be used."""


def python_files(root: Path) -> list[str]:
    """Tracked .py files when ``root`` is a git checkout, else every .py file (sorted)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "*.py"], capture_output=True,
                             text=True, timeout=30)
        files = out.stdout.split() if out.returncode == 0 else []
    except (OSError, subprocess.SubprocessError):
        files = []
    if not files:
        files = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
                 if not SKIP_DIRS.intersection(p.relative_to(root).parts)]
    return sorted(f for f in files if (root / f).is_file()
                  and (root / f).stat().st_size <= MAX_FILE_BYTES)


def stratum(cross: bool, multiline: bool) -> str:
    """The task's stratum: both axes, e.g. ``cross-file/one-line``."""
    return f"{'cross-file' if cross else 'in-file'}/{'multi-line' if multiline else 'one-line'}"


def tasks(path: str | Path, test_command: str | None = None, holes: str = "all") -> list[Task]:
    if holes not in HOLES:
        raise RepoError(f"repo suite: --holes must be one of {', '.join(HOLES)}, not {holes!r}")
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise RepoError(f"repo suite: {path} is not a directory")
    index = workspace_index(root)
    out = []
    for rel in python_files(root):
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found = fim_tasks_in(rel, text, "repo", "")
        if not found:
            continue
        names = FileNames.of(index, rel, text)
        for task in found:
            rest = IMPORT_LINE.sub("", task.prefix + task.suffix)
            cross = cross_file(task.reference, names, index, rest)
            if holes == "cross-file" and not cross:
                continue
            meta = {**task.meta, "root": str(root), "test_command": test_command or "",
                    "cross_file": cross}
            out.append(Task(**{**task.__dict__, "stratum": stratum(cross, task.multiline),
                               "meta": meta}))
    if not out:
        if holes == "cross-file":
            raise RepoError(f"repo suite: no cross-file holes in {root} (none of its holes "
                            "uses a name imported from another file of the repository)")
        raise RepoError(f"repo suite: no functions with 3+ body lines in {root}")
    return out


def run_tests(task: Task, middle: str, limits: sandbox.Limits) -> sandbox.Outcome:
    """Fill the hole in a copy of the repository and run its test command there."""
    root = Path(task.meta["root"])
    with tempfile.TemporaryDirectory(prefix="covey-repo-") as tmp:
        copy = Path(tmp) / root.name
        shutil.copytree(root, copy, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "__pycache__", ".venv"))
        (copy / task.meta["file"]).write_text(task.prefix + middle + task.suffix,
                                              encoding="utf-8")
        return sandbox.run_command(shlex.split(task.meta["test_command"]), str(copy), limits)


# ----------------------------------------------------------------------------- the index

INDEXES_HELD = 4
_INDEXES: dict[str, tuple[tuple, WorkspaceIndex]] = {}


def workspace_index(root: Path) -> WorkspaceIndex:
    """The workspace index of the repository at ``root`` (:meth:`WorkspaceIndex.scan`, the
    language server's own scan), built once and kept while no indexed file changes, so
    cutting the holes and the run's context share one scan."""
    root = Path(root).resolve()
    stamp = _stamp(root)
    held = _INDEXES.get(str(root))
    if held is not None and held[0] == stamp:
        return held[1]
    index = WorkspaceIndex()
    for _ in index.scan(root):
        pass
    while len(_INDEXES) >= INDEXES_HELD:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[str(root)] = (stamp, index)
    return index


def _stamp(root: Path) -> tuple:
    from covey_specialists.workspace import walk

    out = []
    for path in walk(root):
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((path.as_posix(), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


# ----------------------------------------------------------------------------- cross-file

_STRINGS = re.compile(r"""[rRbBuUfF]{0,2}(\"\"\"[\s\S]*?(\"\"\"|$)|'''[\s\S]*?('''|$)"""
                      r"""|"(\\.|[^"\\\n])*("|$)|'(\\.|[^'\\\n])*('|$))""")
_COMMENT = re.compile(r"#[^\n]*")
_CHAIN = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)(\s*=(?!=))?")


@dataclass(frozen=True)
class FileNames:
    """What a file's names come from: names imported from other workspace modules, whole
    workspace modules imported, and the names the file defines itself."""

    names: dict[str, Outline]
    """A name bound by ``from M import name`` (or ``*``) from workspace module M."""
    modules: dict[str, Outline]
    """A name bound to a whole workspace module (``import pkg.m as m``,
    ``from pkg import m``)."""
    local: frozenset[str]
    """Names the file binds other than by an import: definitions, assignments, parameters."""

    @classmethod
    def of(cls, index: WorkspaceIndex, rel: str, text: str) -> FileNames:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return cls({}, {}, frozenset())
        names: dict[str, Outline] = {}
        modules: dict[str, Outline] = {}
        for imp in _imports(tree):
            target = _resolve(index, rel, imp)
            if target is None:
                continue
            if imp.name == "*":
                for d in target.definitions:
                    if "." not in d.name and not d.name.startswith("_"):
                        names.setdefault(d.name, target)
            elif imp.binds_module(target):
                modules[imp.bound] = target
            else:
                names[imp.bound] = target
        return cls(names, modules, _local_names(tree))


def _imports(tree: ast.AST) -> list[Import]:
    """Every import in the file, at any depth, as the workspace index records one."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out.append(Import(alias.asname, alias.name))
                else:
                    top = alias.name.split(".")[0]
                    out.append(Import(top, top))
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                out.append(Import(alias.asname or alias.name, module, alias.name))
    return out


def _resolve(index: WorkspaceIndex, rel: str, imp: Import) -> Outline | None:
    """The other workspace module ``imp`` names; None for the file itself, a module outside
    the workspace, or the standard library (which the index's lenient lookup could mistake
    for a same-named module of the repository: ``os.path`` for a top-level ``path.py``)."""
    if not imp.module.startswith(".") and imp.module.split(".")[0] in sys.stdlib_module_names:
        return None
    target = index.resolve(rel, Import(imp.bound, imp.module,
                                       "" if imp.name == "*" else imp.name))
    return None if target is None or target.path == rel else target


def _local_names(tree: ast.AST) -> frozenset[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            out.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            out.add(node.rest)
    return frozenset(out)


_WORD = re.compile(r"[A-Za-z_]\w*")
IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+\S+[ \t]+)?import[ \t]+[^\n]*$", re.M)


def cross_file(reference: str, names: FileNames, index: WorkspaceIndex,
               rest: str | None = None) -> bool:
    """Whether ``reference`` uses a name defined in another file of the repository: an
    identifier the file binds by an import resolving to another workspace module, or an
    attribute ``X.name`` (``X.sub.name``) where X is a workspace module so imported and
    ``name`` is defined in it; and in either case not a name the file defines itself.
    Strings, comments, attributes of other objects (``self.name``) and keyword argument
    names are not uses.

    With ``rest`` (the file outside the hole, import lines left out), that name must also
    appear nowhere in it: the current file alone cannot answer the hole (CrossCodeEval's
    criterion), so only the other file's definition says how the name is used."""
    code = _COMMENT.sub("", _STRINGS.sub('""', reference))
    seen = set(_WORD.findall(rest)) if rest is not None else set()
    for match in _CHAIN.finditer(code):
        if match.group(2):  # ``name=``: a keyword argument or an assignment's target
            continue
        chain = [part.strip() for part in match.group(1).split(".")]
        head = chain[0]
        if head in names.local:
            continue
        if head in names.names and head not in seen:
            return True
        module = names.modules.get(head)
        for attr in chain[1:]:
            if module is None:
                break
            if module.find(attr) is not None and attr not in seen:
                return True
            module = index.module(f"{module.module}.{attr}")
    return False


# ----------------------------------------------------------------------------- context

OPEN_TABS = 4
"""Files standing in for the editor's open tabs on a task: the workspace files the task's
file imports, in the order it imports them, at most this many, never the file itself. The
eval has no editor, and an imported file is the one a user most likely has open beside
the one they write; four share the ring's chunks (16: four each), so every file is seen in
more than one place and none crowds the others out."""


class RepoContext:
    """The workspace the editor would have for each repo-suite task: the repository's
    index (built once per run) and, per task, a :class:`RecentChunks` filled with chunks of
    the files it imports (:data:`OPEN_TABS`)."""

    def __init__(self, indexes: dict[str, WorkspaceIndex]):
        self.indexes = indexes
        self._texts: dict[tuple[str, str], str] = {}

    @classmethod
    def for_tasks(cls, tasks: Iterable[Task]) -> RepoContext | None:
        """One index per repository the tasks come from; None when none comes from one."""
        roots = sorted({t.meta["root"] for t in tasks if t.meta.get("root")})
        return cls({root: workspace_index(Path(root)) for root in roots}) if roots else None

    def __call__(self, task: Task) -> Workspace | None:
        index = self.indexes.get(task.meta.get("root", ""))
        if index is None or not task.meta.get("file"):
            return None
        key = task.meta["file"]
        return Workspace(index, self.recent(task, index), key=key)

    def open_tabs(self, task: Task, index: WorkspaceIndex) -> list[str]:
        """The files the task's document (the hole emptied, as the editor holds it)
        imports from the workspace, in import order, at most :data:`OPEN_TABS`."""
        key = task.meta["file"]
        out: list[str] = []
        for imp in outline(key, task.prefix + task.suffix, "python").imports:
            target = _resolve(index, key, imp)
            if target is not None and target.path not in out:
                out.append(target.path)
        return out[:OPEN_TABS]

    def recent(self, task: Task, index: WorkspaceIndex) -> RecentChunks:
        recent = RecentChunks()
        tabs = self.open_tabs(task, index)
        share = max(1, recent.capacity // max(1, len(tabs)))
        for path in tabs:
            text = self._text(task.meta["root"], path)
            chunks = max(1, -(-len(text.splitlines()) // CHUNK_LINES))
            picked = (range(chunks) if chunks <= share else
                      sorted({round(i * (chunks - 1) / max(1, share - 1))
                              for i in range(share)}))
            for chunk in picked:
                recent.add(path, text, chunk * CHUNK_LINES + CHUNK_LINES // 2)
        return recent

    def _text(self, root: str, path: str) -> str:
        if (root, path) not in self._texts:
            try:
                self._texts[(root, path)] = (Path(root) / path).read_text(encoding="utf-8",
                                                                          errors="replace")
            except OSError:
                self._texts[(root, path)] = ""
        return self._texts[(root, path)]

