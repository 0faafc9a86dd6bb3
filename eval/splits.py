"""The held-out split: which source modules the eval uses and training must never see.

The split is by top-level module (``json/decoder.py`` goes with ``json/__init__.py``), so
no package is half in training and half in the eval. It is a hash, not a list, so it is
the same on every machine and for any repository, and it needs no data file.

Training (``covey_training``) calls :func:`is_heldout` on every file it reads
and drops the ones that return True.
"""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path, PurePosixPath

HELDOUT_PERCENT = 15
SALT = "covey-heldout-v1"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def split_key(module_path: str | Path) -> str:
    """The unit the split is decided on: the top-level module or package name.

    Paths inside the standard library are taken relative to it; other paths should be
    relative to their repository root (absolute paths are used as given).
    """
    path = Path(module_path)
    if path.is_absolute():
        path = _relative_to_library(path)
    parts = PurePosixPath(path.as_posix()).parts
    if not parts:
        return ""
    top = parts[0]
    return top[:-3] if top.endswith(".py") and len(parts) == 1 else top


def _relative_to_library(path: Path) -> Path:
    """An absolute path relative to the stdlib or site-packages; else the path unchanged."""
    for marker in ("site-packages", "dist-packages"):
        if marker in path.parts:
            return Path(*path.parts[path.parts.index(marker) + 1:])
    try:
        return path.relative_to(stdlib_root())
    except ValueError:
        return Path(*path.parts[1:])


def is_heldout(module_path: str | Path) -> bool:
    """True if this file belongs to the eval's held-out set (training must skip it)."""
    return _held(split_key(module_path))


def repository_key(rel: str) -> str:
    """Within one repository the unit is the module (``toolz/itertoolz``,
    ``tests/test_api``; a package's ``__init__`` is the package; a ``src/`` layout looked
    through): by top-level name alone, a repository's one package would fall wholly on one
    side, and by subpackage one large subpackage (sqlglot's 70 dialects) would."""
    parts = list(PurePosixPath(rel).parts)
    if len(parts) > 1 and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__.py":
        parts = parts[:-1]
    elif parts and parts[-1].endswith(".py"):
        parts[-1] = parts[-1][:-3]
    return "/".join(parts)


def is_heldout_in_repository(rel: str) -> bool:
    """True if this file of a repository (``rel`` relative to its root) is held out from
    training on that repository (:func:`repository_key`). A top-level module gets the
    answer :func:`is_heldout` gives."""
    return _held(repository_key(rel))


def _held(key: str) -> bool:
    digest = hashlib.sha256(f"{SALT}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELDOUT_PERCENT
