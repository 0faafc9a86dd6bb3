"""Finishing a type-hints refactor: the parameters and returns the model left bare.

Asked to add type hints, the small model often annotates all but one parameter, or every
parameter but not the return. Each bare spot is then asked for on its own: the same prompt,
continued with the model's code up to the spot and ``: `` (or ``) -> ``); the model writes
the type, and the first whole expression of its line goes in. Every type is the model's;
a reply that is not a type expression leaves its spot bare.
"""

from __future__ import annotations

import ast
import io
import tokenize

MAX_FILLED = 8
TYPE_TOKENS = 16
_OPEN, _CLOSE = "([{", ")]}"
_TYPE_NODES = (ast.Name, ast.Attribute, ast.Subscript, ast.BinOp, ast.BitOr, ast.Tuple,
               ast.List, ast.expr_context)


def _offset(lines: list[str], lineno: int, col_bytes: int) -> int:
    """Character offset of an ast position (1-based line, UTF-8 byte column)."""
    line = lines[lineno - 1]
    return sum(len(x) for x in lines[:lineno - 1]) + \
        len(line.encode()[:col_bytes].decode(errors="ignore"))


def _params_close(code: str, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int | None:
    """Character offset just past the ``)`` that closes ``fn``'s parameter list."""
    lines = code.splitlines(keepends=True)
    start = _offset(lines, fn.lineno, fn.col_offset)
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code[start:]).readline):
            if tok.type != tokenize.OP:
                continue
            if tok.string in _OPEN:
                depth += 1
            elif tok.string in _CLOSE:
                depth -= 1
                if depth == 0:
                    head = code[start:].splitlines(keepends=True)
                    return start + sum(len(x) for x in head[:tok.end[0] - 1]) + tok.end[1]
    except (tokenize.TokenError, IndentationError):
        return None
    return None


def bare_spots(code: str) -> list[tuple[tuple, int]]:
    """((function line, function name, parameter name or "return"), character offset where
    the hint goes), in source order; ``self`` and ``cls`` need none."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    lines = code.splitlines(keepends=True)
    spots = []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                             ast.AsyncFunctionDef))]
    for fn in sorted(functions, key=lambda n: (n.lineno, n.col_offset)):
        a = fn.args
        params = [*a.posonlyargs, *a.args, a.vararg, *a.kwonlyargs, a.kwarg]
        for p in params:
            if p is not None and p.annotation is None and p.arg not in ("self", "cls"):
                spots.append(((fn.lineno, fn.name, p.arg),
                              _offset(lines, p.end_lineno, p.end_col_offset)))
        if fn.returns is None:
            close = _params_close(code, fn)
            if close is not None:
                spots.append(((fn.lineno, fn.name, "return"), close))
    return spots


def first_type(reply: str, returns: bool) -> str | None:
    """The type expression a reply starts with: up to the first ``,``, ``)`` or ``=`` (a
    return's: ``:``) outside brackets, on its first line; None unless it parses as a type."""
    depth, end = 0, len(reply)
    for i, ch in enumerate(reply):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            if depth == 0:
                end = i
                break
            depth -= 1
        elif ch == "\n" or (depth == 0 and ch in (":" if returns else ",=")):
            end = i
            break
    text = reply[:end].strip()
    try:
        node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if not all(_type_like(n) for n in ast.walk(node)):
        return None
    return text


def _type_like(node: ast.AST) -> bool:
    """A node a type expression may hold: names, ``a.b``, ``a[b]``, ``a | b``, and as
    constants only forward references, ``None`` and ``...`` (``maxcol: 3`` is no type)."""
    if isinstance(node, ast.Constant):
        return node.value is None or node.value is Ellipsis or isinstance(node.value, str)
    return isinstance(node, _TYPE_NODES)


class HintFiller:
    """The model's code (:attr:`text`) and its bare spots (at most :data:`MAX_FILLED` asked
    for)."""

    tokens_per_entry = TYPE_TOKENS

    def __init__(self, code: str) -> None:
        self.text = code
        self.asked: set[tuple] = set()

    def _where(self, spot: tuple) -> int | None:
        return next((at for key, at in bare_spots(self.text) if key == spot), None)

    def pending(self) -> tuple | None:
        if len(self.asked) >= MAX_FILLED:
            return None
        return next((key for key, _ in bare_spots(self.text) if key not in self.asked), None)

    def continuation(self, spot: tuple) -> str:
        return self.text[:self._where(spot)] + _joiner(spot)

    def add(self, spot: tuple, reply: str) -> None:
        self.asked.add(spot)
        hint = first_type(reply, spot[2] == "return")
        at = self._where(spot)
        if hint is None or at is None:
            return
        rest = self.text[at:]
        if spot[2] != "return" and rest.startswith("="):  # a default: PEP 8 spaces it now
            rest = " = " + rest[1:].lstrip()
        self.text = f"{self.text[:at]}{_joiner(spot)}{hint}{rest}"


def _joiner(spot: tuple) -> str:
    return " -> " if spot[2] == "return" else ": "


def hint_filler(code: str) -> HintFiller | None:
    """A filler for ``code`` (the model's answer, repaired and dedented), or None when it
    has no bare spot or does not parse."""
    return HintFiller(code) if bare_spots(code) else None
