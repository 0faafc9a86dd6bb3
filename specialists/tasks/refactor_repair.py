"""Deterministic repairs of a refactor answer (Python), each one behaviour-preserving.

- :func:`keep_parameters`: an instruction that promises the same behaviour (the ready
  ones) never changes a function's parameters, yet a small model drops defaults, a
  ``*`` or a whole parameter while adding type hints. The original parameter list comes
  back, with the annotations the model wrote.
- :func:`keep_bodies`: adding type hints changes signatures only, so under that
  instruction the original comes back with the annotations of the model's ``def`` lines.
- :func:`cut_after_final_return`: an answer that runs on after its function's last
  ``return`` (a repeated docstring, cut by the token limit) does not parse; what follows
  a return in the function's own body is dead code, so the answer ends there.
"""

from __future__ import annotations

import ast
import copy
import textwrap

import libcst as cst


def _parse_cst(code: str) -> cst.Module | None:
    try:
        return cst.parse_module(code)
    except (cst.ParserSyntaxError, ValueError):
        return None


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The parameter list without annotations: names, kinds, order and defaults."""
    args = copy.deepcopy(fn.args)
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
        if arg is not None:
            arg.annotation = None
    return ast.dump(args)


def _functions(tree: ast.Module) -> dict[tuple[str, str], ast.FunctionDef]:
    """Top-level functions and the methods of top-level classes, by (class, name)."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out[("", node.name)] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    out[(node.name, item.name)] = item
    return out


class _Annotate(cst.CSTTransformer):
    """Give the original's unannotated parameters the model's annotations."""

    def __init__(self, annotations: dict[str, cst.Annotation]) -> None:
        self.annotations = annotations

    def leave_Param(self, original, updated):
        found = self.annotations.get(updated.name.value)
        if updated.annotation is not None or found is None:
            return updated
        equal = cst.AssignEqual() if updated.default is not None else updated.equal
        return updated.with_changes(annotation=found, equal=equal)


class _RestoreParameters(cst.CSTTransformer):
    def __init__(self, originals: dict[tuple[str, str], cst.Parameters]) -> None:
        self.originals = originals
        self.scope: list[str] = []

    def visit_ClassDef(self, node) -> bool:
        self.scope.append(node.name.value)
        return len(self.scope) == 1

    def leave_ClassDef(self, original, updated):
        self.scope.pop()
        return updated

    def visit_FunctionDef(self, node) -> bool:
        self.scope.append("def")
        return False  # nested functions are the model's own business

    def leave_FunctionDef(self, original, updated):
        self.scope.pop()
        if len(self.scope) > 1:
            return updated
        params = self.originals.get((self.scope[0] if self.scope else "", updated.name.value))
        if params is None:
            return updated
        return updated.with_changes(params=params.visit(_Annotate(_annotations(updated))))


def _all_params(params: cst.Parameters) -> list[cst.Param]:
    found = [*params.posonly_params, *params.params, *params.kwonly_params]
    found += [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    return found


def _annotations(fn: cst.FunctionDef) -> dict[str, cst.Annotation]:
    return {p.name.value: p.annotation for p in _all_params(fn.params)
            if p.annotation is not None}


def keep_parameters(code: str, original: str) -> str:
    """``code`` with every function of ``original`` taking its original parameters
    (names, kinds, order, defaults); the model's annotations stay. Unchanged when either
    does not parse or nothing differs."""
    try:
        before, after = ast.parse(textwrap.dedent(original)), ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    old, new = _functions(before), _functions(after)
    changed = {key for key, fn in new.items()
               if key in old and _signature(fn) != _signature(old[key])}
    if not changed:
        return code
    original_cst, code_cst = _parse_cst(textwrap.dedent(original)), _parse_cst(code)
    if original_cst is None or code_cst is None:
        return code
    originals = {}
    for node in original_cst.body:
        if isinstance(node, cst.FunctionDef) and ("", node.name.value) in changed:
            originals[("", node.name.value)] = node.params
        elif isinstance(node, cst.ClassDef) and isinstance(node.body, cst.IndentedBlock):
            for item in node.body.body:
                if isinstance(item, cst.FunctionDef) and \
                        (node.name.value, item.name.value) in changed:
                    originals[(node.name.value, item.name.value)] = item.params
    return code_cst.visit(_RestoreParameters(originals)).code


def cut_after_final_return(code: str, original: str) -> str:
    """``code`` up to the first ``return``/``raise`` in its last function's own body, when
    ``code`` does not parse but that prefix does and keeps every function of the
    original; else ``code`` unchanged."""
    try:
        ast.parse(code)
        return code
    except (SyntaxError, ValueError):
        pass
    try:
        wanted = set(_functions(ast.parse(textwrap.dedent(original))))
    except (SyntaxError, ValueError):
        return code
    lines = code.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(("return", "raise")):
            continue
        for end in range(i + 1, min(i + 30, len(lines)) + 1):
            prefix = "".join(lines[:end])
            try:
                tree = ast.parse(prefix)
            except (SyntaxError, ValueError):
                continue
            last = tree.body[-1] if tree.body else None
            if (isinstance(last, ast.FunctionDef | ast.AsyncFunctionDef)
                    and isinstance(last.body[-1], ast.Return | ast.Raise)
                    and last.body[-1].lineno == i + 1
                    and wanted <= set(_functions(tree))):
                return prefix
            break  # this return parses but is not the body's own last word
    return code


class _Functions(cst.CSTVisitor):
    """Every function definition, nested ones included, in source order."""

    def __init__(self) -> None:
        self.found: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node) -> None:
        self.found.append(node)


def _cst_functions(module: cst.Module) -> list[cst.FunctionDef]:
    visitor = _Functions()
    module.visit(visitor)
    return visitor.found


def _signatures(code: str, max_lines: int = 20) -> dict[str, cst.FunctionDef]:
    """The ``def`` lines of ``code`` by function name, parsed on their own when the whole
    answer does not parse (each line that starts a ``def``, up to its colon)."""
    module = _parse_cst(code)
    if module is not None:
        return {fn.name.value: fn for fn in reversed(_cst_functions(module))}
    found: dict[str, cst.FunctionDef] = {}
    lines = code.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(("def ", "async def ")):
            continue
        for end in range(i + 1, min(i + max_lines, len(lines)) + 1):
            stub = _parse_cst(textwrap.dedent("\n".join(lines[i:end])) + "\n    pass\n")
            if stub is not None and isinstance(stub.body[0], cst.FunctionDef):
                found.setdefault(stub.body[0].name.value, stub.body[0])
                break
    return found


class _TakeSignatures(cst.CSTTransformer):
    """Each function of the original, with the annotations of the model's signature."""

    def __init__(self, signatures: dict[str, cst.FunctionDef]) -> None:
        self.signatures = signatures

    def leave_FunctionDef(self, original, updated):
        model = self.signatures.get(updated.name.value)
        if model is None:
            return updated
        return updated.with_changes(params=updated.params.visit(_Annotate(_annotations(model))),
                                    returns=updated.returns or model.returns)


def keep_bodies(code: str, original: str) -> str:
    """The original, each of its functions with the annotations of the signature the model
    wrote for it: adding type hints changes signatures only, so bodies, docstrings,
    comments and decorators stay the original's, and so do the parameters themselves. A
    small model otherwise drops a line or repeats a docstring until its token limit, which
    also leaves an answer that does not parse; its ``def`` lines are still used. ``code``
    unchanged when the original does not parse or no signature of its functions is
    found."""
    source = _parse_cst(textwrap.dedent(original))
    if source is None:
        return code
    names = {fn.name.value for fn in _cst_functions(source)}
    signatures = {name: fn for name, fn in _signatures(code).items() if name in names}
    if not signatures:
        return code
    return source.visit(_TakeSignatures(signatures)).code
