"""Docstring examples: a function or class with its docstring removed → the docstring text.

What is taught, per definition:
- a function that takes parameters: only docstrings that name every parameter (in the
  file's own convention: Google ``Args:``, NumPy ``Parameters``, or reST ``:param x:``);
  a one-line summary would teach the model to leave parameters out. An ``Args:`` section
  is never invented: describing a parameter honestly needs more than its name, so such
  definitions are skipped;
- prose (more than one line) that names every parameter is kept too;
- functions without parameters, and classes: the docstring as written.
The file's convention (the style most of its sectioned docstrings use, Google when none
do) is recorded per example, so a style mismatch can be counted rather than taught.
"""

from __future__ import annotations

import ast
import random
import re
import textwrap
from collections import Counter

from covey_specialists.tasks import doc as doc_task
from covey_training.data_completion import line_offsets
from covey_training.examples import Example
from covey_training.sources import SourceFile

MAX_CODE_CHARS = 1400
MAX_DOC_CHARS = 500
MIN_DOC_CHARS = 12


def strip_docstring(src: SourceFile, node: ast.AST) -> tuple[str, int, int] | None:
    """The definition's code without its docstring (dedented), and its character span."""
    starts = line_offsets(src.text)
    first_line = min([node.lineno] + [d.lineno for d in node.decorator_list])
    doc = node.body[0]
    lines = src.text.splitlines(keepends=True)
    kept = lines[first_line - 1:doc.lineno - 1] + lines[doc.end_lineno:node.end_lineno]
    if lines[doc.lineno - 1].strip().startswith(("def ", "class ", "async def ")):
        return None  # one-line def with the docstring on the same line
    code = textwrap.dedent("".join(kept)).rstrip() + "\n"
    return code, starts[first_line - 1], starts[node.end_lineno]


STYLES = {
    "google": re.compile(r"^\s*(Args|Arguments|Parameters|Keyword Args|Returns|Raises|Yields):"
                         r"\s*$", re.M),
    "numpy": re.compile(r"^\s*(Parameters|Returns|Raises|Yields|Other Parameters)\s*\n"
                        r"\s*-{3,}\s*$", re.M),
    "rest": re.compile(r"^\s*:(param|type|returns?|raises?|rtype)\b", re.M),
}


class Examples(list):
    """A file's examples plus how many definitions each rule kept or dropped."""

    def __init__(self, items=(), stats: Counter | None = None):
        super().__init__(items)
        self.stats = stats if stats is not None else Counter()


def docstring_style(doc: str) -> str | None:
    """``numpy``, ``google`` or ``rest`` when the docstring has sections, else None."""
    for style in ("numpy", "rest", "google"):  # numpy first: its headers look like Google's
        if STYLES[style].search(doc):
            return style
    return None


def file_convention(tree: ast.Module) -> str:
    """The docstring style most sectioned docstrings in the file use (Google if none)."""
    counts = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node, clean=True)
            if doc and (style := docstring_style(doc)):
                counts[style] += 1
    return counts.most_common(1)[0][0] if counts else "google"


def parameters(node: ast.AST) -> list[str]:
    """The names a caller passes: every parameter but a method's ``self``/``cls``."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return []
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return [n for n in names if n not in ("self", "cls")]


def names_every_parameter(doc: str, params: list[str]) -> bool:
    return all(re.search(rf"(?<![\w.]){re.escape(p)}\b", doc) for p in params)


def doc_rule(node: ast.AST, doc: str, convention: str) -> str:
    """Why a definition's docstring is kept (``keep-*``) or dropped (``drop-*``)."""
    params = parameters(node)
    if not params:
        return "keep-no-parameters"
    style = docstring_style(doc)
    if style is None:
        # prose that names every parameter is documentation; a one-line summary is not
        if "\n" in doc.strip() and names_every_parameter(doc, params):
            return "keep-prose-names-parameters"
        return "drop-parameters-undocumented"
    if not names_every_parameter(doc, params):
        return "drop-some-parameters-missing"
    return "keep-parameters-documented" if style == convention else "keep-other-style"


def usable_docstring(doc: str) -> bool:
    return (MIN_DOC_CHARS <= len(doc) <= MAX_DOC_CHARS and '"""' not in doc and "```" not in doc
            and "'''" not in doc)


def doc_examples(src: SourceFile, rng: random.Random, per_file: int, budget: int) -> Examples:
    candidates, stats = [], Counter()
    convention = file_convention(src.tree)
    for node in ast.walk(src.tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        doc = ast.get_docstring(node, clean=True)
        if not doc or len(node.body) < 2 or not usable_docstring(doc):
            continue
        stripped = strip_docstring(src, node)
        if stripped is None or len(stripped[0]) > min(MAX_CODE_CHARS, budget):
            continue
        rule = doc_rule(node, doc, convention)
        stats[rule] += 1
        if rule.startswith("drop"):
            continue
        candidates.append((node, doc, rule, *stripped))
    rng.shuffle(candidates)
    out = Examples(stats=stats)
    for node, doc, rule, code, start, end in candidates[:per_file]:
        built = doc_task.training_example(code, doc, budget)
        out.append(Example(task=doc_task.NAME, prompt=built.prompt, target=built.target,
                           source=f"{src.rel}:{start}-{end}",
                           meta={**built.meta, "name": node.name, "rule": rule,
                                 "style": docstring_style(doc) or "summary",
                                 "convention": convention,
                                 "kind": type(node).__name__}))
    return out
