"""Refactor examples: instruction + a real function → the function rewritten by a codemod."""

from __future__ import annotations

import ast
import random
import textwrap
from itertools import zip_longest

from covey_specialists.tasks import refactor
from covey_training.codemods import apply_all
from covey_training.data_completion import line_offsets
from covey_training.examples import Example
from covey_training.sources import SourceFile

MAX_FUNCTION_CHARS = 800


def functions(src: SourceFile):
    """Functions and methods not nested inside another function: (node, code, start, end)."""
    starts = line_offsets(src.text)
    lines = src.text.splitlines(keepends=True)

    def walk(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            is_func = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if is_func and not in_function:
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                code = textwrap.dedent("".join(lines[first - 1:child.end_lineno]))
                yield child, code, starts[first - 1], starts[child.end_lineno]
            yield from walk(child, in_function or is_func)

    yield from walk(src.tree, False)


def refactor_examples(src: SourceFile, rng: random.Random, per_file: int,
                      budget: int) -> list[Example]:
    candidates = []
    for node, code, start, end in functions(src):
        if len(code) > min(MAX_FUNCTION_CHARS, budget):
            continue
        for instruction, rewritten, details in apply_all(code):
            candidates.append((node, code, start, end, instruction, rewritten, details))
    rng.shuffle(candidates)
    # round-robin over codemods so rare rewrites are not crowded out by common ones
    by_mod: dict[str, list] = {}
    for cand in candidates:
        by_mod.setdefault(cand[-1]["codemod"], []).append(cand)
    # type hints apply to almost every function: one per file keeps the mix balanced
    by_mod["type-hints"] = by_mod.get("type-hints", [])[:1]
    ordered = [c for group in zip_longest(*by_mod.values()) for c in group if c is not None]
    out = []
    for node, code, start, end, instruction, rewritten, details in ordered[:per_file]:
        built = refactor.training_example(code, instruction, rewritten, budget)
        out.append(Example(task=refactor.NAME, prompt=built.prompt, target=built.target,
                           source=f"{src.rel}:{start}-{end}",
                           meta={**built.meta, "name": node.name, **details}))
    return out
