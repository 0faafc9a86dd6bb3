"""The ``repo`` suite: holes punched in the Python files of any local repository.

Tasks are cut like ``stdlib-fim`` (one single-line and one multi-line hole per function).
With ``test_command`` a candidate is scored by the repository's own tests: the repository
is copied to a temporary directory, the hole is filled, and the command runs there in the
sandbox (no network, limits, timeout). Without it, exact match and edit similarity only.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from covey_eval import sandbox
from covey_eval.stdlib import fim_tasks_in
from covey_eval.tasks import Task

SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist", ".tox"}
MAX_FILE_BYTES = 200_000


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


def tasks(path: str | Path, test_command: str | None = None) -> list[Task]:
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise RepoError(f"repo suite: {path} is not a directory")
    out = []
    for rel in python_files(root):
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for task in fim_tasks_in(rel, text, "repo", rel.split("/")[0]):
            meta = {**task.meta, "root": str(root), "test_command": test_command or ""}
            out.append(Task(**{**task.__dict__, "meta": meta}))
    if not out:
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
