"""Fill-in-the-middle examples whose spans align with lines and syntax nodes.

Many random spans per file, as in the SantaCoder/StarCoder FIM recipe, but cut where an
editor's cursor would be, in five families:
- ``line``: one whole statement line (the cursor at the line start or after its indent);
- ``rest``: the rest of a line from the start of an expression node (cursor mid-line);
- ``token``: a few tokens inside one line, from a random token boundary to a later one
  (the cursor mid-line with code after it);
- ``block``: a run of 2–6 consecutive statements (a multi-line completion);
- ``block-rest``: from a statement to the end of its block (finish the function or loop).
Line and block spans come in two variants: the cursor at the line start, or after the
indentation (what an editor's auto-indent leaves, and what the eval suites use).
Prompts and targets are built by the completion task's module
(:func:`covey_specialists.tasks.completion.training_example`), with the same code the server
uses, so training and serving formats cannot drift.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterator

from covey_eval.stdlib import is_docstring, line_offsets
from covey_specialists.tasks import completion
from covey_training.examples import Example
from covey_training.sources import SourceFile

MAX_MIDDLE_CHARS = 320
MAX_BLOCK_LINES = 6
MAX_REST_OF_BLOCK_LINES = 12
FAMILY_WEIGHTS = {"line": 0.3, "rest": 0.15, "token": 0.15, "block": 0.25, "block-rest": 0.15}
KIND_FAMILY = {"line": "line", "line-indented": "line", "rest": "rest", "token": "token",
               "block": "block", "block-indented": "block", "block-rest": "block-rest"}
MULTILINE_FAMILIES = {"block", "block-rest"}
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+|\S")


def _token_span(line: str, rng: random.Random) -> tuple[int, int] | None:
    """A random run of 1–6 tokens inside ``line`` (not its first token: that is a ``line``
    span), as offsets into the line."""
    toks = [m.span() for m in _TOKEN.finditer(line)]
    if len(toks) < 3:
        return None
    i = rng.randrange(1, len(toks) - 1)
    j = min(len(toks) - 1, i + rng.randrange(0, 6))
    return toks[i][0], toks[j][1]


def _spans(src: SourceFile, rng: random.Random | None = None) -> Iterator[tuple[str, int, int]]:
    """Candidate (kind, start, end) character spans in ``src``."""
    rng = rng or random.Random(0)
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
            if line.isascii() and (tok := _token_span(line.rstrip("\n"), rng)) is not None:
                yield "token", start + tok[0], start + tok[1]
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
                if getattr(first, "decorator_list", None) or is_docstring(first):
                    continue
                start = starts[first.lineno - 1]
                first_line = lines[first.lineno - 1]
                yield "block", start, starts[last.end_lineno]
                # the editor's usual state: the cursor after the auto-indent
                yield ("block-indented", start + len(first_line) - len(first_line.lstrip()),
                       starts[last.end_lineno])
                # the rest of the block from statement i, after the indent
                end_line = body[-1].end_lineno
                if 1 < end_line - first.lineno + 1 <= MAX_REST_OF_BLOCK_LINES:
                    yield ("block-rest", start + len(first_line) - len(first_line.lstrip()),
                           starts[end_line])


def completion_examples(src: SourceFile, rng: random.Random, per_file: int,
                        budget: int) -> list[Example]:
    """Up to ``per_file`` FIM examples from one file, chosen with ``rng``."""
    spans = [s for s in _spans(src, rng)
             if 0 < len(src.text[s[1]:s[2]].strip()) <= MAX_MIDDLE_CHARS]
    by_kind: dict[str, list] = {}
    for span in spans:
        by_kind.setdefault(KIND_FAMILY[span[0]], []).append(span)
    weights = FAMILY_WEIGHTS
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
    built = completion.training_example(prefix, middle, suffix,
                                        KIND_FAMILY[kind] in MULTILINE_FAMILIES, src.rel, budget)
    return Example(task=completion.NAME, prompt=built.prompt, target=built.target,
                   source=f"{src.rel}:{start}-{end}", meta={"kind": kind, **built.meta})
