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

Repository context comes from the same builder too (:mod:`covey_specialists.repo_context`):
for each span, the document the editor would hold just before the user types (the prefix
and the suffix, the middle removed), the cursor at the hole, and a
:class:`~covey_specialists.workspace.WorkspaceIndex` of the example's own package
(:func:`package_index`), in the table's share of the engine's window, counted in the
prepared model's tokens (:func:`context_budget`). Training has no open tabs, so there are no
similar chunks (``recent`` is None): only definitions in use. Examples whose context is
empty stay in the mix, so the adapter still works where there is no workspace.
"""

from __future__ import annotations

import ast
import functools
import keyword
import random
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

from covey_eval.repo import IMPORT_LINE
from covey_eval.stdlib import is_docstring, line_offsets
from covey_specialists.document import Document
from covey_specialists.repo_context import Workspace, build, estimate_tokens, near_cursor, render
from covey_specialists.tasks import completion
from covey_specialists.workspace import WorkspaceIndex, walk
from covey_training.examples import Example
from covey_training.sources import SourceFile, held_out

MAX_MIDDLE_CHARS = 320
MAX_BLOCK_LINES = 6
MAX_REST_OF_BLOCK_LINES = 12
FAMILY_WEIGHTS = {"line": 0.3, "rest": 0.15, "token": 0.15, "block": 0.25, "block-rest": 0.15}
KIND_FAMILY = {"line": "line", "line-indented": "line", "rest": "rest", "token": "token",
               "block": "block", "block-indented": "block", "block-rest": "block-rest"}
MULTILINE_FAMILIES = {"block", "block-rest"}
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+|\S")
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
NEEDY_TRIES = 8
"""Spans per file whose context is built to find those that need it (each build ~0.3 ms)."""
COUNTS_HELD = 8192
"""Rendered snippets whose token count a process remembers."""
INDEXES_HELD = 4
"""Package indexes a process keeps: files come package by package, so one is enough to
build each index once; a few cover a pool's chunks that straddle two packages."""


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
                        budget: int, workspace: Workspace | None = None) -> list[Example]:
    """Up to ``per_file`` FIM examples from one file, chosen with ``rng``; with
    ``workspace`` (the file's package, its key ``src.rel``), each prompt carries the
    repository context serving would build for a cursor at the hole."""
    spans = [s for s in _spans(src, rng)
             if 0 < len(src.text[s[1]:s[2]].strip()) <= MAX_MIDDLE_CHARS]
    # its own generator, seeded by the file: the usual picks stay what they were
    chosen = _needing_context(src, spans, random.Random(src.rel), workspace,
                              max(1, per_file // 3))
    needy = len(chosen)
    seen = {span[1:] for span in chosen}
    by_kind: dict[str, list] = {}
    for span in spans:
        by_kind.setdefault(KIND_FAMILY[span[0]], []).append(span)
    weights = FAMILY_WEIGHTS
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
    examples = [_example(src, kind, start, end, budget, workspace) for kind, start, end in chosen]
    for i, example in enumerate(examples):
        example.meta["needs_context"] = i < needy
    return examples


def _needing_context(src: SourceFile, spans: list, rng: random.Random,
                     workspace: Workspace | None, most: int) -> list:
    """Up to ``most`` spans that only the repository context can answer: the middle uses a
    name found nowhere else in the file but its imports, and the context built for the hole
    holds it (CrossCodeEval's cut, on training files). Few examples need the context
    otherwise, and an adapter trained on those learns to ignore it."""
    if workspace is None:
        return []
    counts = Counter(_NAME.findall(IMPORT_LINE.sub("", src.text)))
    candidates = [(span, new) for span in spans
                  if (new := _new_names(src.text[span[1]:span[2]], counts))]
    rng.shuffle(candidates)
    out: list = []
    for span, new in candidates[:NEEDY_TRIES]:
        if len(out) >= most:
            break
        repo = repo_context(src.text[:span[1]], src.text[span[2]:], src.rel, workspace)
        if any(re.search(rf"\b{name}\b", repo) for name in new):
            out.append(span)
    return out


def _new_names(middle: str, counts: Counter) -> set[str]:
    """Names in ``middle`` that the rest of the file never mentions."""
    here = Counter(_NAME.findall(middle))
    return {name for name, n in here.items() if counts[name] == n and len(name) > 2
            and not keyword.iskeyword(name)}


def _example(src: SourceFile, kind: str, start: int, end: int, budget: int,
             workspace: Workspace | None = None) -> Example:
    # HumanEval-infilling convention: the middle stops before its final newline, which
    # starts the suffix instead
    if src.text[end - 1:end] == "\n":
        end -= 1
    prefix, middle, suffix = src.text[:start], src.text[start:end], src.text[end:]
    repo = repo_context(prefix, suffix, src.rel, workspace)
    built = completion.training_example(prefix, middle, suffix,
                                        KIND_FAMILY[kind] in MULTILINE_FAMILIES, src.rel, budget,
                                        served_format(), repo)
    return Example(task=completion.NAME, prompt=built.prompt, target=built.target,
                   source=f"{src.rel}:{start}-{end}",
                   meta={"kind": kind, "repo_context": bool(repo), **built.meta})


# ----------------------------------------------------------------------------- context

def repo_context(prefix: str, suffix: str, key: str, workspace: Workspace | None,
                 fmt: str = "") -> str:
    """The context :func:`covey_specialists.tasks.completion.plan` renders for a cursor at
    the end of ``prefix`` in the document ``prefix + suffix`` (the hole emptied, as the
    editor holds the file before the user types); empty without a workspace."""
    if workspace is None:
        return ""
    doc = Document(f"file:///{key}", prefix + suffix, "python")
    snippets = build(doc, *near_cursor(doc, len(prefix)), workspace)
    return render(snippets, fmt or served_format(), doc.language or "python")


@functools.cache
def served_format() -> str:
    """The format examples are built in: the completion specialist's ``prompt_format`` in
    the table, as serving builds its prompts. Once per process."""
    from covey_specialists.table import load_table

    return load_table().for_task(completion.NAME).prompt_format


@functools.cache
def context_budget() -> tuple[int, Callable[[str], int], str]:
    """(budget in tokens, how a text is counted, ``tokenizer`` or ``estimate``) as serving
    sets them: the completion specialist's ``repo_context_share`` of the engine's
    ``max_model_len``, counted with the prepared model's tokenizer where it is on this
    machine, else the builder's estimate. Once per process."""
    from covey_specialists import base_model
    from covey_specialists.context_window import ContextWindow, load_tokenizer
    from covey_specialists.table import load_table

    table = load_table()
    spec = table.for_task(completion.NAME)
    length = table.engine.max_model_len
    budget = int(length * spec.repo_context_share)
    try:
        tokenizer = load_tokenizer(base_model.resolve_base(spec.base))
    except base_model.ModelError:
        tokenizer = None
    if tokenizer is None:
        return budget, estimate_tokens, "estimate"
    # the same definitions come back for every hole in a file: count each once
    return budget, functools.lru_cache(COUNTS_HELD)(ContextWindow(length, tokenizer).count), \
        "tokenizer"


_INDEXES: OrderedDict[tuple[str, str, bool], WorkspaceIndex] = OrderedDict()


def package_index(folder: Path, base: Path, train_only: bool = False) -> WorkspaceIndex:
    """The workspace index of the package in ``folder``, keyed relative to ``base`` (the
    folder training keys its files from, so a file's key is its ``SourceFile.rel``): the
    same outlines the language server indexes (:func:`covey_specialists.workspace.walk`).
    ``train_only`` leaves out held-out modules, so no line of them, not even a signature,
    reaches a training prompt. Cached per process (:data:`INDEXES_HELD`)."""
    cache_key = (str(folder), str(base), train_only)
    index = _INDEXES.get(cache_key)
    if index is not None:
        _INDEXES.move_to_end(cache_key)
        return index
    index = WorkspaceIndex(roots=[Path(base)])
    for path in walk(Path(folder)):
        key = path.relative_to(base).as_posix()
        if not (train_only and held_out(base, key)):
            index.add_file(path, key)
    _INDEXES[cache_key] = index
    while len(_INDEXES) > INDEXES_HELD:
        _INDEXES.popitem(last=False)
    return index


def workspace_for(src: SourceFile, package: Path | None, split: str = "train",
                  ) -> Workspace | None:
    """The workspace serving would have for ``src``: its package's index (``package``, a
    folder under ``src.root``; None: no workspace, so no context), ``src.rel`` as the
    document's key, no recent chunks (training has no open tabs), the served budget."""
    if package is None:
        return None
    budget, count, _ = context_budget()
    index = package_index(package, src.root, train_only=split == "train")
    return Workspace(index=index, recent=None, key=src.rel, budget_tokens=budget, count=count)
