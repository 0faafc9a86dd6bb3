"""What the workspace index costs: building it, keeping it current, and using it per keystroke.

Prints figures; asserts nothing about time.

- **Indexing** a generated workspace of ``--files`` Python modules (default 10,000: 100
  packages of 100 modules, each about 40 lines with a class of three methods and three
  functions, importing two sibling modules): wall time of :meth:`WorkspaceIndex.scan`
  (what the server runs in its worker thread), the process's RSS growth, and in a second
  scan under tracemalloc the Python heap's peak and what the full index keeps.
- **Keeping it current** without the client's reports: one mtime re-scan with nothing
  changed (the server's fallback, every ``index_rescan_s``), and with 1% of files changed.
- **Per keystroke, context on**: :func:`repo_context.build` + :func:`render` for a cursor
  in a file importing five workspace modules and using them near the cursor, with the index
  full and the ring of recent chunks full; a one-character edit before each call (the tree
  is brought up to date first, as the completion plan's own context does). p50/p95 over
  ``--calls`` calls (default 1,000), for a short file and a long one, counting tokens with
  the length estimate and, where the base model's ``tokenizer.json`` is on this machine,
  with the real tokenizer (what the server does when the engine names its model).

Run: python benchmarks/bench_index.py [--files 10000] [--calls 1000]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil

from covey_server.workspace import WorkspaceState
from covey_settings import home
from covey_specialists.document import Document
from covey_specialists.repo_context import (
    RecentChunks,
    Workspace,
    build,
    estimate_tokens,
    near_cursor,
    render,
)
from covey_specialists.workspace import WorkspaceIndex, outline

PACKAGE_SIZE = 100

MODULE = '''"""Module {p}.{m}: generated for the benchmark."""
from .mod{a:03d} import func_{a}_0
from . import mod{b:03d}


class Thing{m}:
    """A thing of module {m}."""

    def __init__(self, size: int, label: str = "x"):
        self.size = size
        self.label = label

    def grow(self, by: int) -> int:
        """Grow by some amount."""
        return self.size + by

    def describe(self) -> str:
        return f"{{self.label}}:{{self.size}}"


def func_{m}_0(x: int, y: int = 2) -> int:
    """Add with a twist."""
    return func_{a}_0(x) + y


def func_{m}_1(items: list[int],
               scale: float = 1.0) -> float:
    """Scale a sum."""
    total = sum(items)
    return total * scale


def func_{m}_2(name: str) -> str:
    """Greet someone."""
    thing = Thing{m}(len(name))
    return str(mod{b:03d}.func_{b}_1([thing.size]))
'''

CURSOR_HEAD = '''"""Where the user types: imports five workspace modules."""
from pkg000.mod001 import Thing1, func_1_0
from pkg001.mod002 import func_2_1
from pkg002 import mod003
from pkg003.mod004 import func_4_2 as greet
import pkg004.mod005 as five

'''
CURSOR_BODY = '''

def handler_{i}(request, items):
    """Handle one request."""
    thing = Thing1(len(items))
    total = func_2_1(items, scale=thing.grow(2))
    label = greet(request.name)
    extra = mod003.func_3_0(total) + five.func_5_0(1)
    return func_1_0(extra), label
'''


def generate(root: Path, files: int) -> None:
    for n in range(files):
        p, m = divmod(n, PACKAGE_SIZE)
        folder = root / f"pkg{p:03d}"
        if m == 0:
            folder.mkdir(parents=True)
            (folder / "__init__.py").write_text("")
        a, b = (m + 1) % PACKAGE_SIZE, (m + 2) % PACKAGE_SIZE
        (folder / f"mod{m:03d}.py").write_text(MODULE.format(p=p, m=m, a=a, b=b))


def rss() -> int:
    return psutil.Process().memory_info().rss


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def index_figures(root: Path) -> WorkspaceIndex:
    gc.collect()
    before = rss()
    index = WorkspaceIndex()
    started = time.perf_counter()
    count = sum(1 for _ in index.scan(root))
    elapsed = time.perf_counter() - started
    grown = rss() - before
    print(f"index {count} files: {elapsed:.2f} s ({count / elapsed:.0f} files/s), "
          f"RSS +{grown / 2**20:.1f} MiB")

    gc.collect()
    tracemalloc.start()
    traced = WorkspaceIndex()
    for _ in traced.scan(root):
        pass
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  Python heap under tracemalloc: peak {peak / 2**20:.1f} MiB, "
          f"the full index holds {held / 2**20:.1f} MiB "
          f"({held / max(len(traced), 1) / 1024:.1f} KiB per module)")
    del traced
    return index


def rescan_figures(root: Path, files: int) -> None:
    state = WorkspaceState()
    state.add_root(root)
    resolved = root.resolve()
    sum(1 for _ in state.scan(resolved))
    time.sleep(2.1)  # past the "racily clean" window, as a server idling between re-scans
    state.rescan(resolved)  # reads again what was modified just before the scan
    started = time.perf_counter()
    read, removed = state.rescan(resolved)
    print(f"re-scan, nothing changed: {time.perf_counter() - started:.2f} s "
          f"({read} files read)")
    changed = files // 100
    for n in range(0, files, 100):
        p, m = divmod(n, PACKAGE_SIZE)
        path = root / f"pkg{p:03d}" / f"mod{m:03d}.py"
        path.write_text(path.read_text() + "\n\ndef added(): pass\n")
    started = time.perf_counter()
    read, removed = state.rescan(resolved)
    print(f"re-scan, {changed} files changed: {time.perf_counter() - started:.2f} s "
          f"({read} files read)")


def keystroke_figures(index: WorkspaceIndex, root: Path, files: int, calls: int,
                      functions: int, count, label: str) -> None:
    text = CURSOR_HEAD + "".join(CURSOR_BODY.format(i=i) for i in range(functions))
    doc = Document("file:///bench/pkg099/cursor.py", text, "python")
    ring = RecentChunks()
    for n in range(0, files, max(1, files // 16)):
        p, m = divmod(n, PACKAGE_SIZE)
        path = root / f"pkg{p:03d}" / f"mod{m:03d}.py"
        ring.add(path.relative_to(root).as_posix(), path.read_text(), 30)
    workspace = Workspace(index, ring, "pkg099/cursor.py", 512, count)
    cursor = len(doc.text) - len("), label\n")
    costs, snippets = [], []
    for i in range(calls):
        doc.replace(cursor, cursor + (1 if i % 2 else 0), "" if i % 2 else "x")
        doc.tree  # noqa: B018 - the completion plan brings the tree up to date anyway
        start, end = near_cursor(doc, cursor)
        t0 = time.perf_counter_ns()
        snippets = build(doc, start, end, workspace)
        render(snippets, "fim-smol", "python")
        costs.append((time.perf_counter_ns() - t0) / 1e6)
    print(f"  {label}, {doc.line_count} lines: p50 {statistics.median(costs):.3f} ms, "
          f"p95 {pct(costs, 95):.3f} ms, max {max(costs):.3f} ms "
          f"({len(snippets)} snippets, {count(render(snippets, 'fim-smol', 'python'))} "
          f"tokens)")
    if count is estimate_tokens:  # what each call cost before: outlining the whole file
        whole = []
        for _ in range(20):
            t0 = time.perf_counter_ns()
            outline("pkg099/cursor.py", doc.text, "python")
            whole.append((time.perf_counter_ns() - t0) / 1e6)
        print(f"    (outlining the whole file, as each call did before 4702340: "
              f"{statistics.median(whole):.3f} ms)")


def tokenizer_count():
    path = home.models_dir() / "smollm2-135m-instruct" / "tokenizer.json"
    if not path.exists():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    return lambda text: len(tokenizer.encode(text, add_special_tokens=True).ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=1_000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="covey-bench-index-") as tmp:
        root = Path(tmp) / "workspace"
        started = time.perf_counter()
        generate(root, args.files)
        print(f"generated {args.files} modules in {time.perf_counter() - started:.1f} s")
        index = index_figures(root)
        rescan_figures(root, args.files)
        print(f"per keystroke, build + render, index of {len(index)} modules, ring of 16 "
              f"chunks, {args.calls} calls:")
        counters = [("estimated tokens", estimate_tokens)]
        real = tokenizer_count()
        if real is not None:
            counters.append(("SmolLM2 tokenizer", real))
        for label, count in counters:
            for functions in (4, 300):
                keystroke_figures(index, root, args.files, args.calls, functions, count,
                                  label)


if __name__ == "__main__":
    main()
