"""Scores for one answer to one task, by task kind. Execution goes through the sandbox.

Every score is a number in [0, 1] (``diff_lines`` is a count) or None where it does not
apply, so a system's mean and bootstrap interval can be taken over any of them.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable

from covey_eval import metrics, repo, sandbox, stdlib
from covey_eval.tasks import Task

HUMANEVAL_LIMITS = sandbox.Limits(cpu_s=3, wall_s=6.0, memory_mb=1024)
TEST_LIMITS = sandbox.Limits(cpu_s=60, wall_s=90.0, memory_mb=2048, nproc=64)
REPO_LIMITS = sandbox.Limits(cpu_s=300, wall_s=600.0, memory_mb=4096, nproc=256)


def static_scores(task: Task, answer: str) -> dict:
    """The scores that need no execution."""
    if task.kind == "completion":
        return {"exact_match": metrics.exact_match(answer, task.reference),
                "edit_similarity": metrics.edit_similarity(answer, task.reference)}
    if task.kind == "doc":
        return doc_scores(task, answer)
    return refactor_scores(task, answer)


def execution_job(task: Task, answer: str) -> Callable[[], sandbox.Outcome] | None:
    """What to run to decide pass/fail for this answer, or None if this task has no tests."""
    if task.kind == "completion" and task.test:
        program = task.program(answer)
        return lambda: sandbox.run_python(program, HUMANEVAL_LIMITS)
    if task.kind == "completion" and task.meta.get("test_command"):
        return lambda: repo.run_tests(task, answer, REPO_LIMITS)
    if task.kind == "refactor" and task.meta.get("test_module"):
        if refactor_parse(answer) is None:
            return None
        program = stdlib.behaviour_program(task, answer)
        return lambda: sandbox.run_python(program, TEST_LIMITS)
    return None


def execution_metric(task: Task) -> str:
    return "pass@1" if task.kind == "completion" else "behaviour_preserved"


# ---------------------------------------------------------------- docstrings

def insert_docstring(code: str, block: str) -> str:
    """Put a docstring block (already indented for the body) after the def's signature."""
    tree = ast.parse(code)
    fn = tree.body[0]
    lines = code.splitlines(keepends=True)
    at = fn.body[0].lineno - 1
    if block and not block.endswith("\n"):
        block += "\n"
    return "".join(lines[:at]) + block + "".join(lines[at:])


def body_indent(code: str) -> str:
    fn = ast.parse(code).body[0]
    line = code.splitlines()[fn.body[0].lineno - 1]
    return line[: len(line) - len(line.lstrip())]


def doc_scores(task: Task, block: str) -> dict:
    """``block`` is the docstring as it would be inserted (indented, triple-quoted)."""
    text = ""
    parses = 0.0
    if block.strip():
        try:
            fn = ast.parse(insert_docstring(task.code, block)).body[0]
            text = ast.get_docstring(fn) or ""
            parses = float(bool(text))
        except SyntaxError:
            text = block
    params = task.meta.get("params", [])
    documented = (sum(1 for p in params if p in metrics.tokens(text) or p in text) / len(params)
                  if params else (1.0 if text else 0.0))
    return {"rouge_l": metrics.rouge_l(text, task.reference),
            "bleu": metrics.bleu(text, task.reference),
            "parses": parses, "params_documented": documented}


# ---------------------------------------------------------------- refactoring

def refactor_parse(code: str) -> ast.Module | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body):
        return None
    return tree


def instruction_satisfied(key: str, before: ast.Module, after: ast.Module) -> bool:
    """Did the rewrite do what was asked? Checked on the syntax tree."""
    def functions(tree: ast.AST) -> list[ast.FunctionDef]:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    if key == "type-hints":
        fns = functions(after)
        args = [a for f in fns for a in [*f.args.posonlyargs, *f.args.args, *f.args.kwonlyargs]
                if a.arg not in ("self", "cls")]
        return bool(fns) and all(a.annotation is not None for a in args) \
            and all(f.returns is not None for f in fns)
    if key == "comprehension":
        comps = sum(isinstance(n, (ast.ListComp, ast.GeneratorExp)) for n in ast.walk(after))
        return comps > sum(isinstance(n, (ast.ListComp, ast.GeneratorExp))
                           for n in ast.walk(before))
    if key == "early-return":
        return stdlib.nesting_depth(after) < stdlib.nesting_depth(before)
    if key == "extract-function":
        return len(functions(after)) > len(functions(before))
    # simplify: no bigger than before
    return len(list(ast.walk(after))) <= len(list(ast.walk(before)))


def diff_lines(before: str, after: str) -> int:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))


def refactor_scores(task: Task, code: str) -> dict:
    after = refactor_parse(code)
    before = refactor_parse(task.code)
    key = task.meta.get("instruction_key", "simplify")
    satisfied = (float(instruction_satisfied(key, before, after))
                 if after is not None and before is not None else 0.0)
    return {"parses": float(after is not None), "instruction_satisfied": satisfied,
            "diff_lines": diff_lines(task.code, code)}
