"""Where training code comes from: Python files under repository roots, split by module.

Examples are built from files on disk at training time; the dataset manifest records the
file and offsets rather than copying text. The held-out rule is per file, so evaluation
never sees a line of a module that training used.
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from covey_eval.splits import is_heldout, is_heldout_in_repository, stdlib_root

SKIP_DIRS = {"site-packages", "__pycache__", "test", "tests", "idlelib", "lib2to3",
             "turtledemo", "ensurepip", "encodings", "venv", ".git", ".venv", "node_modules"}
MAX_FILE_BYTES = 400_000


@dataclass(frozen=True)
class SourceFile:
    root: Path
    rel: str
    """Path relative to its root, with forward slashes: the split key."""
    text: str
    tree: ast.Module

    @property
    def path(self) -> Path:
        return self.root / self.rel


def default_roots() -> list[Path]:
    """The installed CPython standard library (PSF licence)."""
    return [Path(sysconfig.get_paths()["stdlib"])]


def is_held_out(rel: str) -> bool:
    """The evaluation split: the eval harness's own rule (by top-level module,
    :func:`covey_eval.splits.is_heldout`), so training and the eval never disagree."""
    return bool(is_heldout(rel))


def held_out(base: Path, rel: str) -> bool:
    """Whether the file ``rel`` (relative to ``base``) is held out: in a repository the user
    named, by module within it (:func:`covey_eval.splits.is_heldout_in_repository`), so
    training on it keeps some of its own modules to be judged on; in the standard library
    and installed packages, the eval's split (:func:`is_held_out`)."""
    base = Path(base).resolve()
    if base == stdlib_root().resolve() or base.name in ("site-packages", "dist-packages"):
        return is_held_out(rel)
    return is_heldout_in_repository(rel)


def iter_source_paths(roots: list[Path], split: str = "train") -> Iterator[tuple[Path, str]]:
    """(base, rel) of the Python files under ``roots`` in the requested split, in a stable
    order, without reading them (so workers can parse them in parallel)."""
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"unknown split {split!r}")
    for root in roots:
        root = Path(root)
        base = split_base(root)
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            rel = path.relative_to(base).as_posix()
            inside = path.relative_to(root if root.is_dir() else base)
            if any(part in SKIP_DIRS for part in Path(inside).parts[:-1]):
                continue
            held = held_out(base, rel)
            if (split == "train" and held) or (split == "heldout" and not held):
                continue
            yield base, rel


def iter_sources(roots: list[Path], split: str = "train") -> Iterator[SourceFile]:
    """Parseable Python files under ``roots`` in the requested split, in a stable order."""
    for base, rel in iter_source_paths(roots, split):
        source = load(base, rel)
        if source is not None:
            yield source


def split_base(root: Path) -> Path:
    """The folder paths are taken relative to: a package's parent (so an installed
    package's files are ``pkg/mod.py`` and the split is by package, as the eval's), else the
    root itself (the stdlib, a repository), or a single file's folder."""
    if root.is_file() or (root / "__init__.py").is_file():
        return root.parent
    return root


def load(root: Path, rel: str) -> SourceFile | None:
    path = root / rel
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    return SourceFile(root=root, rel=rel, text=text, tree=tree)
