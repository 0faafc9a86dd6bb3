"""Scores for the gate, defined as the eval harness defines them.

completion: exact match (whitespace-trimmed) and edit similarity (1 − Levenshtein / longer);
doc: ROUGE-L F1 over word tokens, and structural checks on the inserted docstring;
refactor: parses, instruction satisfied, behaviour preserved (same AST as the reference
rewrite, which the codemod guarantees behaviour-equivalent).
"""

from __future__ import annotations

import ast
import re
import textwrap

_WORD = re.compile(r"\w+|[^\w\s]")

try:  # the eval harness's definitions, when installed, so the gate and the eval agree
    from covey_eval.metrics import edit_similarity as _eval_edit_similarity
    from covey_eval.metrics import exact_match as _eval_exact_match
    from covey_eval.metrics import rouge_l as _eval_rouge_l
except ImportError:
    _eval_edit_similarity = _eval_exact_match = _eval_rouge_l = None


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(candidate: str, reference: str) -> float:
    if _eval_edit_similarity is not None:
        return _eval_edit_similarity(candidate, reference)
    candidate, reference = candidate.strip(), reference.strip()
    longest = max(len(candidate), len(reference))
    return 1.0 if longest == 0 else 1.0 - levenshtein(candidate, reference) / longest


def exact_match(candidate: str, reference: str) -> bool:
    if _eval_exact_match is not None:
        return bool(_eval_exact_match(candidate, reference))
    return candidate.strip() == reference.strip()


def _lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on lower-cased word and punctuation tokens."""
    if _eval_rouge_l is not None:
        return _eval_rouge_l(candidate, reference)
    c, r = _WORD.findall(candidate.lower()), _WORD.findall(reference.lower())
    if not c or not r:
        return 0.0
    lcs = _lcs(c, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


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
