"""Fill-in-the-middle examples whose spans align with lines and syntax nodes.

Three span kinds, mirroring what the editor asks for:
- ``line``: one whole statement line (the cursor at the line start or after its indent);
- ``rest``: the rest of a line from the start of an expression node (cursor mid-line);
- ``block``: a run of 2–6 consecutive statements (a multi-line completion).
Line and block spans come in two variants: the cursor at the line start, or after the
indentation (what an editor's auto-indent leaves, and what the eval suites use).
Prompts and targets are built by the completion task's module
(:func:`covey_specialists.tasks.completion.training_example`), with the same code the server
uses, so training and serving formats cannot drift.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator

from covey_specialists.tasks import completion
from covey_training.examples import Example
from covey_training.sources import SourceFile

MAX_MIDDLE_CHARS = 320
MAX_BLOCK_LINES = 6


def line_offsets(text: str) -> list[int]:
    """Character offset of the start of each line (1-based line n is at index n-1)."""
    offsets, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        offsets.append(pos)
    return offsets


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _spans(src: SourceFile) -> Iterator[tuple[str, int, int]]:
    """Candidate (kind, start, end) character spans in ``src``."""
    text, starts = src.text, line_offsets(src.text)
    lines = text.splitlines(keepends=True)
    for node in ast.walk(src.tree):
        if isinstance(node, ast.stmt) and node.lineno == node.end_lineno:
            line = lines[node.lineno - 1]
            if line.strip().startswith(("#", '"', "'")) or not line.strip():
                continue
            start, end = starts[node.lineno - 1], starts[node.lineno]
            indent = len(line) - len(line.lstrip())
            yield "line", start, end
            yield "line-indented", start + indent, end
            for child in ast.walk(node):
                if (isinstance(child, ast.expr) and child.lineno == node.lineno
                        and child.col_offset > indent and child.end_lineno == node.lineno
                        and not isinstance(child, ast.Constant | ast.Name)):
                    # col_offset is in UTF-8 bytes; only trust it on ASCII lines
                    if line.isascii():
                        yield "rest", start + child.col_offset, end - 1
                    break
        for body_name in ("body", "orelse", "finalbody"):
            body = getattr(node, body_name, None)
            if not isinstance(body, list) or len(body) < 2 or not isinstance(body[0], ast.stmt):
                continue
            for i in range(len(body) - 1):
                j = i + 1
                while (j + 1 < len(body)
                       and body[j + 1].end_lineno - body[i].lineno < MAX_BLOCK_LINES):
                    j += 1
                first, last = body[i], body[j]
                if last.end_lineno - first.lineno + 1 > MAX_BLOCK_LINES:
                    continue
                if getattr(first, "decorator_list", None) or _is_docstring(first):
                    continue
                start = starts[first.lineno - 1]
                first_line = lines[first.lineno - 1]
                yield "block", start, starts[last.end_lineno]
                # the editor's usual state: the cursor after the auto-indent
                yield ("block-indented", start + len(first_line) - len(first_line.lstrip()),
                       starts[last.end_lineno])


def completion_examples(src: SourceFile, rng: random.Random, per_file: int,
                        budget: int) -> list[Example]:
    """Up to ``per_file`` FIM examples from one file, chosen with ``rng``."""
    spans = [s for s in _spans(src) if 0 < len(src.text[s[1]:s[2]].strip()) <= MAX_MIDDLE_CHARS]
    by_kind: dict[str, list] = {}
    for span in spans:
        by_kind.setdefault(span[0].split("-")[0], []).append(span)
    weights = {"line": 0.4, "rest": 0.3, "block": 0.3}
    chosen, seen = [], set()
    for _ in range(per_file * 3):
        if len(chosen) >= per_file or not by_kind:
            break
        kinds = [k for k in weights if by_kind.get(k)]
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        span = rng.choice(by_kind[kind])
        if span[1:] in seen:
            continue
        seen.add(span[1:])
        chosen.append(span)
    return [_example(src, kind, start, end, budget) for kind, start, end in chosen]


def _example(src: SourceFile, kind: str, start: int, end: int, budget: int) -> Example:
    # HumanEval-infilling convention: the middle stops before its final newline, which
    # starts the suffix instead
    if src.text[end - 1:end] == "\n":
        end -= 1
    prefix, middle, suffix = src.text[:start], src.text[start:end], src.text[end:]
    built = completion.training_example(prefix, middle, suffix, kind.startswith("block"),
                                        src.rel, budget)
    return Example(task=completion.NAME, prompt=built.prompt, target=built.target,
                   source=f"{src.rel}:{start}-{end}", meta={"kind": kind, **built.meta})
