"""Scores for the gate, defined as the eval harness defines them.

completion: exact match (whitespace-trimmed) and edit similarity (1 − Levenshtein / longer);
doc: ROUGE-L F1 over word tokens, and structural checks on the inserted docstring;
refactor: parses, instruction satisfied, behaviour preserved (same AST as the reference
rewrite, which the codemod guarantees behaviour-equivalent).
"""

from __future__ import annotations

import ast
import textwrap

# The eval harness's definitions (same distribution), so the gate and the eval agree.
from covey_eval.metrics import edit_similarity, rouge_l  # noqa: E402,F401
from covey_eval.metrics import exact_match as _exact_match  # noqa: E402


def exact_match(candidate: str, reference: str) -> bool:
    return bool(_exact_match(candidate, reference))


def docstring_structure(block: str, code: str) -> dict[str, bool]:
    """Checks on a post-processed docstring block inserted into ``code``'s definition."""
    text = block.strip().strip('"').strip()
    first = text.splitlines()[0].strip() if text else ""
    checks = {
        "non_empty": bool(text),
        "summary_line": bool(first) and len(first) <= 120
        and not first.startswith(("def ", "class ")),
        "no_code_echo": not any(line.strip().startswith(("def ", "class ", "return "))
                                for line in text.splitlines()),
    }
    checks["inserts_cleanly"] = bool(text) and _inserts_cleanly(block, code)
    return checks


def _inserts_cleanly(block: str, code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef
                                                         | ast.ClassDef)), None)
    if node is None:
        return False
    lines = code.splitlines(keepends=True)
    at = node.body[0].lineno - 1
    new = "".join(lines[:at]) + block + "".join(lines[at:])
    try:
        new_tree = ast.parse(new)
    except SyntaxError:
        return False
    new_node = next(n for n in new_tree.body if isinstance(n, type(node)))
    return ast.get_docstring(new_node) is not None


def parses(code: str) -> bool:
    try:
        ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return False
    return True


def _normal_ast(code: str) -> str | None:
    try:
        return ast.dump(ast.parse(textwrap.dedent(code)))
    except (SyntaxError, ValueError):
        return None


def instruction_satisfied(code: str, meta: dict) -> bool:
    """Does ``code`` show the structure the codemod's instruction asked for?"""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return False
    mod = meta.get("codemod")
    if mod == "comprehension":
        has_comp = any(isinstance(n, ast.ListComp) for n in ast.walk(tree))
        appends_in_loop = any(isinstance(n, ast.For) and any(
            isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
            and c.func.attr == "append" for c in ast.walk(n)) for n in ast.walk(tree))
        return has_comp and not appends_in_loop
    if mod == "early-return":
        return nesting_total(tree) < nesting_total(ast.parse(textwrap.dedent(meta["code"])))
    if mod == "type-hints":
        fns = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        args = [a for f in fns for a in [*f.args.posonlyargs, *f.args.args, *f.args.kwonlyargs]
                if a.arg not in ("self", "cls")]
        return bool(fns) and all(a.annotation is not None for a in args) \
            and all(f.returns is not None for f in fns)
    if mod == "simplify":
        before = ast.parse(textwrap.dedent(meta["code"]))
        return len(list(ast.walk(tree))) <= len(list(ast.walk(before)))
    if mod == "extract-variable":
        assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                    for t in n.targets if isinstance(t, ast.Name)}
        return meta["name"] in assigned
    return False


_BLOCKS = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.AsyncFor, ast.AsyncWith)


def nesting_total(tree: ast.AST) -> int:
    """Sum over statements of how many if/for/while/with/try blocks enclose them."""
    def walk(node: ast.AST, depth: int) -> int:
        total = depth if isinstance(node, ast.stmt) else 0
        inner = depth + 1 if isinstance(node, _BLOCKS) else depth
        return total + sum(walk(c, inner) for c in ast.iter_child_nodes(node))
    return walk(tree, 0)


def refactor_checks(code: str, meta: dict) -> dict[str, bool]:
    ok_parse = parses(code)
    reference = _normal_ast(meta["reference"])
    return {
        "parses": ok_parse,
        "instruction_satisfied": ok_parse and instruction_satisfied(code, meta),
        "behaviour_preserved": ok_parse and reference is not None
        and _normal_ast(code) == reference,
    }
