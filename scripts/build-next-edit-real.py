"""Build the real next-edit suite (eval/data/next_edit_real.jsonl) from the changes between
consecutive released versions of licence-checked packages. Run by hand, with network to
PyPI; the eval only reads the committed result (it never fetches anything).

In each Python file present in both versions, lines replaced one for one whose change is
one contiguous run of tokens (``factor`` → ``size``, ``)`` → ``, strict=True)``) are
grouped by that change. A group of two or more lines within a window's reach is a real
sequence: its first line is the edit made, the others (inside the window) are the ones
due. A changed line with no other change in its window gives a negative: nothing is due.
Each task keeps the file's lines around the window only.

    .venv/bin/python scripts/build-next-edit-real.py [--out eval/data]
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from covey_specialists.tasks.next_edit import WINDOW_ABOVE, WINDOW_BELOW, lines_of
from covey_specialists.tasks.next_edit_sequences import Sequence, case

PAIRS = [  # package, older, newer, licence (as the package's metadata declares it)
    ("click", "8.1.8", "8.2.0", "BSD-3-Clause"),
    ("werkzeug", "3.0.6", "3.1.0", "BSD-3-Clause"),
    ("flask", "3.0.3", "3.1.0", "BSD-3-Clause"),
    ("urllib3", "2.2.3", "2.3.0", "MIT"),
    ("pytest", "8.3.5", "8.4.0", "MIT"),
    ("marshmallow", "3.26.1", "4.0.0", "MIT"),
    ("attrs", "24.3.0", "25.1.0", "MIT"),
    ("rich", "13.9.4", "14.0.0", "MIT"),
    ("anyio", "4.7.0", "4.8.0", "MIT"),
    ("pluggy", "1.5.0", "1.6.0", "MIT"),
    ("httpx", "0.27.2", "0.28.0", "BSD-3-Clause"),
    ("jinja2", "3.1.4", "3.1.5", "BSD-3-Clause"),
    ("pygments", "2.18.0", "2.19.0", "BSD-2-Clause"),
    ("packaging", "24.1", "24.2", "Apache-2.0 OR BSD-2-Clause"),
]
CONTEXT_LINES = 20
"""Lines of the file kept around each window (the prompt reads the window only)."""
MAX_LINE = 200
NEGATIVES_PER_FILE = 2
MIN_NEGATIVES = 10
"""A package gives at most as many negatives as positives, and at least this many."""
_TOKEN = re.compile(r"\w+|[^\w\s]|\s+")


def fetch(package: str, version: str, into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.11",
                    f"{package}=={version}", "-d", str(into)], check=True)
    (wheel,) = [p for p in into.glob("*.whl")
                if p.name.lower().startswith(package.lower().replace("-", "_") + "-" + version)]
    return wheel


def sources(wheel: Path) -> tuple[dict[str, str], str]:
    """The wheel's Python files by path, and its licence text."""
    files, licence = {}, ""
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".py") and ".dist-info/" not in name:
                files[name] = archive.read(name).decode("utf-8", "replace")
            elif ".dist-info/" in name and re.search(r"LICEN[CS]E", name, re.I):
                licence = archive.read(name).decode("utf-8", "replace")
    return files, licence


def change_of(old: str, new: str) -> tuple[str, str] | None:
    """The one contiguous run of tokens that differs between two lines, else None."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    ops = [op for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
           if op[0] != "equal"]
    if len(ops) != 1:
        return None
    _, i1, i2, j1, j2 = ops[0]
    removed, added = "".join(a[i1:i2]), "".join(b[j1:j2])
    if not (removed + added).strip():
        return None  # whitespace only
    return removed, added


def changed_pairs(old: list[str], new: list[str]) -> list[tuple[int, str, str]]:
    pairs = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new,
                                                      autojunk=False).get_opcodes():
        if op == "replace" and i2 - i1 == j2 - j1:
            pairs += [(i1 + k, old[i1 + k], new[j1 + k]) for k in range(i2 - i1)
                      if max(len(old[i1 + k]), len(new[j1 + k])) <= MAX_LINE]
    return pairs


def file_cases(path: str, old_text: str, new_text: str,
               rng: random.Random) -> tuple[list, list]:
    """The real sequences in one file, and the lone changes (negatives)."""
    old, new = lines_of(old_text), lines_of(new_text)
    pairs = changed_pairs(old, new)
    groups: dict[tuple[str, str], list] = {}
    for pair in pairs:
        change = change_of(pair[1], pair[2])
        if change is not None:
            groups.setdefault(change, []).append(pair)
    changed = sorted(p[0] for p in pairs)
    positives = []
    for group in groups.values():
        while len(group) >= 2:  # the lines one window reaches from the first, then the rest
            first = group[0][0]
            reach = [p for p in group if p[0] <= first + WINDOW_BELOW]
            group = group[len(reach):]
            if len(reach) >= 2:
                positives.append(case(Sequence("real", tuple(reach)), old, path, done=0))
    lone = [p for p in pairs if not any(0 < abs(q - p[0]) <= max(WINDOW_ABOVE, WINDOW_BELOW)
                                        for q in changed)]
    rng.shuffle(lone)
    negatives = [case(Sequence("real-lone", (p,)), old, path, done=0)
                 for p in lone[:NEGATIVES_PER_FILE]]
    return positives, negatives


def trimmed(found) -> tuple[str, int, int]:
    """The file's lines around the window, the cursor's offset in them and the first
    line kept."""
    lines = lines_of(found.text, keepends=True)
    first = max(0, found.cursor_line - WINDOW_ABOVE - CONTEXT_LINES)
    last = min(len(lines), found.cursor_line + WINDOW_BELOW + 1 + CONTEXT_LINES)
    text = "".join(lines[first:last])
    return text, sum(len(line) for line in lines[first:found.cursor_line]), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "eval/data")
    args = parser.parse_args()
    tasks, provenance = [], []
    licences = args.out / "licences"
    licences.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for package, older, newer, licence in PAIRS:
            old_files, _ = sources(fetch(package, older, Path(tmp) / f"{package}-{older}"))
            new_files, text = sources(fetch(package, newer, Path(tmp) / f"{package}-{newer}"))
            (licences / f"{package}.txt").write_text(text or f"{licence}\n")
            count, positives, negatives = 0, [], []
            for path in sorted(set(old_files) & set(new_files)):
                rng = random.Random(f"{package}:{path}")
                more, fewer = file_cases(path, old_files[path], new_files[path], rng)
                positives += more
                negatives += fewer
            random.Random(package).shuffle(negatives)
            for found in positives + negatives[:max(MIN_NEGATIVES, len(positives))]:
                code, cursor, first = trimmed(found)
                edits = [dataclasses.replace(e, line=e.line - first) for e in found.edits]
                tasks.append({
                    "id": f"{package}-{newer}:{found.path}:{found.cursor_line + 1}:"
                          f"{found.kind}",
                    "package": package, "kind": found.kind, "code": code,
                    "reference": found.expected, "cursor": cursor,
                    "path": found.path, "edits": [dataclasses.asdict(e) for e in edits]})
                count += 1
            provenance.append({"package": package, "older": older, "newer": newer,
                               "licence": licence, "tasks": count,
                               "source": f"https://pypi.org/project/{package}/{newer}/"})
            print(f"{package} {older} -> {newer}: {count} tasks", file=sys.stderr)
    (args.out / "next_edit_real.jsonl").write_text(
        "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks))
    (args.out / "next_edit_real_sources.json").write_text(json.dumps(provenance, indent=1) + "\n")


if __name__ == "__main__":
    main()
