"""Checks on a model's answer, for escalation: each returns why the answer is unusable, or
None when it passes (or cannot be checked, e.g. a language without a parser here).

Pure functions on text. Python is checked with :mod:`ast`; JavaScript parameter lists with
a regular expression (enough to name the parameters a docstring should mention).
"""

from __future__ import annotations

import ast
import re
import textwrap

_JS_PARAMS = re.compile(r"\(([^)]*)\)")
"""The first parenthesised list of a definition: its parameters (function, method, arrow)."""
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return None


def completion_problem(prefix: str, middle: str, suffix: str, language: str) -> str | None:
    """An empty middle, or (Python) a file that no longer parses once it is filled in.

    Only when the file parsed with *some* middle is a failure held against this one: a
    prefix and suffix that cannot parse whatever goes between them say nothing about it.
    """
    if not middle.strip():
        return "empty answer"
    if language != "python":
        return None
    if _parse(prefix + middle + suffix) is not None:
        return None
    if _parse(prefix + suffix) is None and _parse(prefix + "pass" + suffix) is None:
        return None  # the surroundings do not parse on their own (e.g. a clipped window)
    return "does not parse"


def function_params(code: str, language: str = "python") -> list[str]:
    """The parameter names of the first function in ``code`` (not ``self``/``cls``)."""
    if language == "python":
        tree = _parse(code)
        fn = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                                ast.AsyncFunctionDef))),
                  None) if tree else None
        if fn is None:
            return []
        a = fn.args
        ordered = (*a.posonlyargs, *a.args, a.vararg, *a.kwonlyargs, a.kwarg)
        return [x.arg for x in ordered if x is not None and x.arg not in ("self", "cls")]
    match = _JS_PARAMS.search(code)
    if not match:
        return []
    names = []
    for part in match.group(1).split(","):
        part = part.strip().lstrip(".").split("=")[0].split(":")[0].strip()
        if _IDENT.fullmatch(part):
            names.append(part)
    return names


def missing_params(code: str, docstring: str, language: str = "python") -> list[str]:
    """Parameters of the function in ``code`` that ``docstring`` never names."""
    return [p for p in function_params(code, language)
            if not re.search(rf"(?<![\w$]){re.escape(p)}(?![\w$])", docstring)]


def docstring_problem(code: str, docstring: str, language: str = "python") -> str | None:
    """No docstring text, or one that leaves parameters of the function unmentioned."""
    if not docstring.strip():
        return "empty docstring"
    missing = missing_params(code, docstring, language)
    if missing:
        return f"docstring misses parameter{'s' if len(missing) > 1 else ''} " \
               f"{', '.join(missing)}"
    return None


def _interface(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """Top-level (and method) function names → their parameter names."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                not node.name.startswith("_"):
            a = node.args
            out.setdefault(node.name, tuple(x.arg for x in (*a.posonlyargs, *a.args,
                                                              *a.kwonlyargs)))
    return out


def refactor_problem(original: str, rewritten: str, language: str = "python") -> str | None:
    """No code, unchanged code, or (Python) code that does not parse or changes the public
    interface: a function of the original that is gone or takes other parameters.

    A changed interface is what a static check can see of a change in behaviour; tests,
    where a caller has them, see the rest.
    """
    if not rewritten.strip():
        return "empty answer"
    if rewritten.strip() == original.strip():
        return "code unchanged"
    if language != "python":
        return None
    before = _parse(original)
    after = _parse(rewritten)
    if after is None:
        return "does not parse" if before is not None else None
    if before is None:
        return None
    new = _interface(after)
    for name, params in _interface(before).items():
        if name not in new:
            return f"drops function {name}"
        if new[name] != params:
            return f"changes the parameters of {name}"
    return None
