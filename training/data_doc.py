"""Docstring examples: a function or class with its docstring removed → the docstring text."""

from __future__ import annotations

import ast
import random
import textwrap

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


def usable_docstring(doc: str) -> bool:
    return (MIN_DOC_CHARS <= len(doc) <= MAX_DOC_CHARS and '"""' not in doc and "```" not in doc
            and "'''" not in doc)


def doc_examples(src: SourceFile, rng: random.Random, per_file: int, budget: int) -> list[Example]:
    candidates = []
    for node in ast.walk(src.tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        doc = ast.get_docstring(node, clean=True)
        if not doc or len(node.body) < 2 or not usable_docstring(doc):
            continue
        stripped = strip_docstring(src, node)
        if stripped is None or len(stripped[0]) > min(MAX_CODE_CHARS, budget):
            continue
        candidates.append((node, doc, *stripped))
    rng.shuffle(candidates)
    out = []
    for node, doc, code, start, end in candidates[:per_file]:
        built = doc_task.training_example(code, doc, budget)
        out.append(Example(task=doc_task.NAME, prompt=built.prompt, target=built.target,
                           source=f"{src.rel}:{start}-{end}",
                           meta={**built.meta, "name": node.name,
                                 "kind": type(node).__name__}))
    return out
