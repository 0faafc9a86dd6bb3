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
RAREST_FIRST = ("dict-comprehension", "any-all", "comprehension", "early-return", "simplify",
                "extract-variable", "type-hints")
"""Codemods in the order a file offers them (measured on the stdlib and 159 packages:
13, 42, 52, 906, 924, 2,016 and 4,398 examples), so a file's cap cuts the common ones."""
MAX_REPEATS = 8
"""How often :func:`balance` may repeat one rare example."""


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
    # round-robin over codemods, rarest first, so rare rewrites are not crowded out
    by_mod: dict[str, list] = {name: [] for name in RAREST_FIRST}
    for cand in candidates:
        by_mod[cand[-1]["codemod"]].append(cand)
    # type hints apply to almost every function: one per file keeps the mix balanced
    by_mod["type-hints"] = by_mod["type-hints"][:1]
    ordered = [c for group in zip_longest(*by_mod.values()) for c in group if c is not None]
    out = []
    for node, code, start, end, instruction, rewritten, details in ordered[:per_file]:
        built = refactor.training_example(code, instruction, rewritten, budget)
        out.append(Example(task=refactor.NAME, prompt=built.prompt, target=built.target,
                           source=f"{src.rel}:{start}-{end}",
                           meta={**built.meta, "name": node.name, **details}))
    return out


def balance(examples: list[Example], rng: random.Random) -> tuple[list[Example], dict]:
    """An even mix of codemods: each gets an equal share of the set, the common ones cut
    to it, the rare ones repeated up to :data:`MAX_REPEATS` times towards it. Left as
    they came, type hints were half the set and loop → comprehension (the rewrite users
    ask for most) 0.6%, so training saw about four of them. Returns the mix as
    ``{codemod: [found, kept]}``."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.meta.get("codemod", ""), []).append(ex)
    if len(groups) < 2:
        return examples, {}
    share = len(examples) // len(groups)
    out, mix = [], {}
    for name, group in sorted(groups.items()):
        rng.shuffle(group)
        want = min(share, len(group) * MAX_REPEATS)
        kept = [group[i % len(group)] for i in range(want)]
        out.extend(kept)
        mix[name] = [len(group), len(kept)]
    return out, mix
