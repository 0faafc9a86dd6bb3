"""Synthetic edit sequences for the next-edit task, from real Python files: a first edit
that implies more, the edits it implies, and negatives where nothing follows. Training
(from the training split) and the eval's ``next-edit`` suite (from the held-out split)
build them with this one module.

Kinds:
- ``rename``: a parameter or local renamed where it is defined, then its other uses;
- ``call-args``: a keyword argument added to one call, then to the same function's other
  calls;
- ``quotes``: one line's single-quoted strings made double-quoted, then the neighbours';
- ``type-hint``: a parameter annotated in one function, then the same parameter in the
  others that the file annotates the same way (the file's own annotation, removed first);
- negatives (``done``): the same sequences with every implied edit already made, and
  ``literal``: a number changed, which implies nothing.

A sequence with k of its implied edits already made gives the history of the first edit
and those k, and the rest as the expected change.
"""

from __future__ import annotations

import ast
import io
import keyword
import random
import re
import tokenize
from dataclasses import dataclass

from covey_specialists.edit_history import RecentEdit
from covey_specialists.tasks.next_edit import lines_of, window_span

KINDS = ("rename", "call-args", "quotes", "type-hint", "done", "literal")
NEW_WORDS = ("value", "items", "count", "data", "name", "result", "key", "item", "text",
             "node", "path", "size", "index", "target", "source", "entry")
KEYWORDS = (("strict", "True"), ("check", "False"), ("default", "None"),
            ("timeout", "timeout"), ("encoding", '"utf-8"'), ("verbose", "verbose"),
            ("key", "key"), ("reverse", "True"))


@dataclass(frozen=True)
class Sequence:
    """Edits on one file: ``steps[0]`` is the first edit; each step is (line, old line,
    new line) on a file whose other lines stay as they are."""

    kind: str
    steps: tuple[tuple[int, str, str], ...]


@dataclass(frozen=True)
class NextEditCase:
    """One example: the file after ``edits``, the cursor on the last edit's line, and the
    window as it should become (``expected``; the window itself when nothing is due)."""

    kind: str
    path: str
    text: str
    edits: tuple[RecentEdit, ...]
    cursor_line: int
    window: str
    expected: str

    @property
    def cursor(self) -> int:
        return sum(len(line) for line in lines_of(self.text, keepends=True)[:self.cursor_line])


def _apply(lines: list[str], steps) -> list[str]:
    out = list(lines)
    for line, _old, new in steps:
        out[line] = new
    return out


def case(seq: Sequence, lines: list[str], path: str, done: int) -> NextEditCase:
    """The file with the first edit and ``done`` implied ones made, the rest expected."""
    made = seq.steps[:1 + done]
    now = _apply(lines, made)
    edits = tuple(RecentEdit(path, line, old + "\n", new + "\n", i)
                  for i, (line, old, new) in enumerate(made))
    cursor = made[-1][0]
    first, last = window_span("\n".join(now) + "\n", cursor)
    after = _apply(now, [s for s in seq.steps[1 + done:] if first <= s[0] < last])
    window = "".join(line + "\n" for line in now[first:last])
    expected = "".join(line + "\n" for line in after[first:last])
    kind = seq.kind if expected != window or len(seq.steps) == 1 else "done"
    return NextEditCase(kind, path, "".join(line + "\n" for line in now), edits, cursor,
                        window, expected)


# ---------------------------------------------------------------- the kinds

def _sub_names(line: str, cols: list[int], old: str, new: str) -> str:
    for col in sorted(cols, reverse=True):
        line = line[:col] + new + line[col + len(old):]
    return line


def _name_uses(fn: ast.AST, name: str) -> dict[int, list[int]]:
    """0-based line → columns where ``name`` is a parameter or a plain name in ``fn``."""
    uses: dict[int, list[int]] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id == name or \
                isinstance(node, ast.arg) and node.arg == name:
            uses.setdefault(node.lineno - 1, []).append(node.col_offset)
    return uses


def renames(tree: ast.Module, lines: list[str], rng: random.Random) -> list[Sequence]:
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
        {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)]
        stored = [n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store)]
        for name in dict.fromkeys(params + stored):
            if name in ("self", "cls", "_") or len(name) < 2:
                continue
            uses = _name_uses(fn, name)
            if len(uses) < 2 or any(len(lines[i]) > 200 for i in uses):
                continue
            new = _new_name(name, taken, rng)
            steps = tuple((i, lines[i], _sub_names(lines[i], cols, name, new))
                          for i, cols in sorted(uses.items()))
            out.append(Sequence("rename", steps))
    return out


def _new_name(name: str, taken: set[str], rng: random.Random) -> str:
    for _ in range(8):
        word = rng.choice(NEW_WORDS)
        new = rng.choice((f"{name}_{word}", f"{word}_{name}", word,
                          re.sub(r"_?[a-z0-9]+$", f"_{word}", name) or word))
        if new != name and new not in taken and not keyword.iskeyword(new) and \
                new.isidentifier():
            return new
    return f"{name}_new"


def call_args(tree: ast.Module, lines: list[str], rng: random.Random) -> list[Sequence]:
    calls: dict[str, list[ast.Call]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.lineno == node.end_lineno and \
                not any(k.arg is None for k in node.keywords) and \
                not any(isinstance(a, ast.Starred) for a in node.args):
            calls.setdefault(ast.dump(node.func), []).append(node)
    out = []
    for group in calls.values():
        by_line = {c.lineno - 1: c for c in group}  # one call a line: the outermost is last
        if len(by_line) < 2:
            continue
        kw, value = rng.choice(KEYWORDS)
        if any(k.arg == kw for c in by_line.values() for k in c.keywords):
            continue
        steps = []
        for i, call in sorted(by_line.items()):
            line, close = lines[i], call.end_col_offset - 1
            if line[close:close + 1] != ")":
                break  # a column in bytes, not characters: leave the line alone
            sep = ", " if call.args or call.keywords else ""
            steps.append((i, line, f"{line[:close]}{sep}{kw}={value}{line[close:]}"))
        else:
            out.append(Sequence("call-args", tuple(steps)))
    return out


_SIMPLE_SINGLE = re.compile(r"^'[^'\"\\\n]*'$")


def quotes(text: str, lines: list[str]) -> list[Sequence]:
    per_line: dict[int, list[tuple[int, int]]] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    for tok in tokens:
        if tok.type == tokenize.STRING and tok.start[0] == tok.end[0] and \
                _SIMPLE_SINGLE.match(tok.string):
            per_line.setdefault(tok.start[0] - 1, []).append((tok.start[1], tok.end[1]))
    steps = []
    for i, spans in sorted(per_line.items()):
        line = lines[i]
        for start, end in sorted(spans, reverse=True):
            line = f'{line[:start]}"{line[start + 1:end - 1]}"{line[end:]}'
        steps.append((i, lines[i], line))
    # runs of neighbouring lines: a style change is carried through a block, not a file
    runs, run = [], []
    for step in steps:
        if run and step[0] - run[-1][0] > 3:
            runs.append(run)
            run = []
        run.append(step)
    runs.append(run)
    return [Sequence("quotes", tuple(r)) for r in runs if len(r) >= 2]


def type_hints(tree: ast.Module, lines: list[str]) -> list[Sequence]:
    """(Working backwards from the file's own annotations.) Steps go from the line without
    the annotation to the line with it; the caller removes them all first."""
    found: dict[tuple[str, str], list[ast.arg]] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs):
                if a.annotation is not None and a.lineno == a.annotation.end_lineno:
                    found.setdefault((a.arg, ast.unparse(a.annotation)), []).append(a)
    out = []
    for group in found.values():
        by_line = {a.lineno - 1: a for a in group}
        if len(by_line) < 2:
            continue
        steps = []
        for i, a in sorted(by_line.items()):
            line = lines[i]
            cut = line[a.col_offset:a.annotation.end_col_offset]
            bare = line[:a.col_offset] + a.arg + line[a.annotation.end_col_offset:]
            if not cut.startswith(a.arg) or ":" not in cut:
                break
            steps.append((i, bare, line))
        else:
            out.append(Sequence("type-hint", tuple(steps)))
    return out


def literals(tree: ast.Module, lines: list[str], rng: random.Random) -> list[Sequence]:
    """An integer literal changed (never one inside a string): it implies nothing."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int and \
                node.lineno == node.end_lineno and node.value > 1:
            i, line = node.lineno - 1, lines[node.lineno - 1]
            old = line[node.col_offset:node.end_col_offset]
            if old != str(node.value):
                continue  # hex, underscores, or a column counted in bytes
            new = str(node.value + rng.randint(1, 9))
            out.append(Sequence("literal", ((i, line, line[:node.col_offset] + new +
                                             line[node.end_col_offset:]),)))
    return out


def sequences(text: str, tree: ast.Module, rng: random.Random) -> list[Sequence]:
    """Every sequence a file offers (before sampling)."""
    lines = lines_of(text)
    return [*renames(tree, lines, rng), *call_args(tree, lines, rng), *quotes(text, lines),
            *type_hints(tree, lines), *literals(tree, lines, rng)]


def cases(text: str, tree: ast.Module, path: str, rng: random.Random,
          per_file: int) -> list[NextEditCase]:
    """Up to ``per_file`` examples from one file, spread over kinds: for each sequence
    picked, the first edit alone, or with some of its implied edits made, or with all of
    them (a negative)."""
    lines = lines_of(text)
    by_kind: dict[str, list[Sequence]] = {}
    for seq in sequences(text, tree, rng):
        by_kind.setdefault(seq.kind, []).append(seq)
    for group in by_kind.values():
        rng.shuffle(group)
    order = list(by_kind)
    rng.shuffle(order)
    out: list[NextEditCase] = []
    depth = 0
    while len(out) < per_file and any(depth < len(by_kind[k]) for k in order):
        for kind in order:
            if depth >= len(by_kind[kind]) or len(out) >= per_file:
                continue
            seq = by_kind[kind][depth]
            start = lines if kind != "type-hint" else [
                *_apply(lines, [(i, new, old) for i, old, new in seq.steps])]
            implied = len(seq.steps) - 1
            done = 0 if implied == 0 else rng.choice(
                [0, 0, rng.randint(0, implied - 1), implied])
            out.append(case(seq, start, path, done))
        depth += 1
    return out
