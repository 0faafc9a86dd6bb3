"""Deterministic refactorings (libcst) that turn real functions into refactor examples.

Each codemod takes one function's source and returns the rewritten source, or None when
the pattern is absent or the rewrite could change behaviour. They are conservative on
purpose: a training target that changes behaviour teaches the wrong thing.
"""

from __future__ import annotations

import ast
import re

import libcst as cst

from covey_specialists.tasks.refactor import READY_INSTRUCTIONS

Source = str | cst.Module
"""A codemod's input: code, or the module it parses to (parsed once for every codemod)."""


def _names_in(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.add(n.value)

    node.visit(Collect())
    return found


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _contains(node: cst.CSTNode, kinds: tuple) -> bool:
    hit = False

    class Find(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            nonlocal hit
            if isinstance(n, kinds):
                hit = True
            return not hit

    node.visit(Find())
    return hit


# ------------------------------------------------------------------ loop → comprehension

# Names whose meaning changes inside a comprehension's own scope.
_SCOPE_SENSITIVE = {"super", "locals", "vars", "dir", "eval", "exec"}


def _scope_safe(expr: cst.CSTNode) -> bool:
    return (not _contains(expr, (cst.Yield, cst.Await, cst.NamedExpr))
            and not (_names_in(expr) & _SCOPE_SENSITIVE))


def _append_call(stmt: cst.BaseStatement, name: str) -> cst.BaseExpression | None:
    """``EXPR`` if ``stmt`` is exactly ``name.append(EXPR)``."""
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1):
        return None
    expr = stmt.body[0]
    if not isinstance(expr, cst.Expr) or not isinstance(expr.value, cst.Call):
        return None
    call = expr.value
    func = call.func
    if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
            and func.value.value == name and func.attr.value == "append"
            and len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star):
        return None
    return call.args[0].value


def _loop_to_comprehension(assign: cst.BaseStatement, loop: cst.BaseStatement,
                           rest: list[cst.BaseStatement]) -> cst.SimpleStatementLine | None:
    if not (isinstance(assign, cst.SimpleStatementLine) and len(assign.body) == 1
            and isinstance(assign.body[0], cst.Assign) and len(assign.body[0].targets) == 1):
        return None
    target = assign.body[0].targets[0].target
    value = assign.body[0].value
    if not (isinstance(target, cst.Name) and isinstance(value, cst.List) and not value.elements):
        return None
    if not isinstance(loop, cst.For) or loop.orelse or loop.asynchronous:
        return None
    body = loop.body.body
    if len(body) != 1:
        return None
    condition = None
    inner = body[0]
    if isinstance(inner, cst.If) and inner.orelse is None and len(inner.body.body) == 1:
        condition, inner = inner.test, inner.body.body[0]
    element = _append_call(inner, target.value)
    if element is None or not _scope_safe(element) or not _scope_safe(loop.iter):
        return None
    if condition is not None and not _scope_safe(condition):
        return None
    loop_names = _names_in(loop.target)
    # the comprehension does not leak its variable, nor can its element refer to the list
    if target.value in _names_in(element) | _names_in(loop.iter) | _names_in(loop.target):
        return None
    if condition is not None and target.value in _names_in(condition):
        return None
    if any(loop_names & _names_in(stmt) for stmt in rest):
        return None
    ifs = [cst.CompIf(test=condition)] if condition is not None else []
    comp = cst.ListComp(elt=element, for_in=cst.CompFor(target=loop.target, iter=loop.iter,
                                                         ifs=ifs))
    new = cst.Assign(targets=[cst.AssignTarget(target=target)], value=comp)
    return assign.with_changes(body=[new])


class _Comprehension(cst.CSTTransformer):
    """Rewrites a statement pair (an empty collection, then the loop that fills it)."""

    @staticmethod
    def _pair(first, loop, rest):
        return _loop_to_comprehension(first, loop, rest)

    def __init__(self) -> None:
        self.changed = 0

    def _rewrite(self, body: list) -> list:
        out, i = [], 0
        while i < len(body):
            if i + 1 < len(body):
                new = self._pair(body[i], body[i + 1], body[i + 2:])
                if new is not None:
                    out.append(new.with_changes(leading_lines=body[i].leading_lines))
                    self.changed += 1
                    i += 2
                    continue
            out.append(body[i])
            i += 1
        return out

    def leave_IndentedBlock(self, original, updated):
        return updated.with_changes(body=self._rewrite(list(updated.body)))


def loop_to_comprehension(code: Source) -> str | None:
    return _run(code, _Comprehension())


# ------------------------------------------------------------------ early return

_INVERSE = {cst.Equal: cst.NotEqual, cst.NotEqual: cst.Equal, cst.Is: cst.IsNot,
            cst.IsNot: cst.Is, cst.In: cst.NotIn, cst.NotIn: cst.In}


def negate(test: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return test.expression.with_changes(lpar=[], rpar=[])
    if (isinstance(test, cst.Comparison) and len(test.comparisons) == 1
            and type(test.comparisons[0].operator) in _INVERSE):
        comp = test.comparisons[0]
        op = _INVERSE[type(comp.operator)]()
        return test.with_changes(comparisons=[comp.with_changes(operator=op)])
    if isinstance(test, cst.Name | cst.Attribute | cst.Call | cst.Subscript):
        return cst.UnaryOperation(operator=cst.Not(), expression=test)
    return cst.UnaryOperation(operator=cst.Not(),
                              expression=test.with_changes(lpar=[cst.LeftParen()],
                                                           rpar=[cst.RightParen()]))


def _ends_in_exit(block: cst.BaseSuite) -> bool:
    last = block.body[-1] if isinstance(block, cst.IndentedBlock) and block.body else None
    return (isinstance(last, cst.SimpleStatementLine)
            and isinstance(last.body[-1], cst.Return | cst.Raise))


class _EarlyReturn(cst.CSTTransformer):
    """At the end of a function body:
    ``if c: <2+ statements>`` → ``if not c: return`` + the statements, and
    ``if c: ...; return x`` ``else: <body>`` → the same without the ``else``."""

    def __init__(self) -> None:
        self.changed = 0
        self.depth = 0

    def visit_FunctionDef(self, node) -> bool:
        self.depth += 1
        return self.depth == 1  # only the outermost function; nested ones are left alone

    def leave_FunctionDef(self, original, updated):
        self.depth -= 1
        if self.depth != 0 or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        body = list(updated.body.body)
        last = body[-1] if body else None
        if not isinstance(last, cst.If) or not isinstance(last.body, cst.IndentedBlock):
            return updated
        if last.orelse is None and len(last.body.body) >= 2 and not _ends_in_exit(last.body):
            guard = cst.If(test=negate(last.test), body=cst.IndentedBlock(
                body=[cst.SimpleStatementLine(body=[cst.Return()])]),
                leading_lines=last.leading_lines)
            new_body = body[:-1] + [guard] + list(last.body.body)
        elif (isinstance(last.orelse, cst.Else) and _ends_in_exit(last.body)
              and isinstance(last.orelse.body, cst.IndentedBlock)):
            new_body = body[:-1] + [last.with_changes(orelse=None)] + list(last.orelse.body.body)
        else:
            return updated
        self.changed += 1
        return updated.with_changes(body=updated.body.with_changes(body=new_body))


def early_return(code: Source) -> str | None:
    return _run(code, _EarlyReturn())


# ------------------------------------------------------------------ extract variable

def _callee_name(call: cst.Call) -> str | None:
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else (
        func.value if isinstance(func, cst.Name) else None)
    if not name:
        return None
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().strip("_")
    return name if name.isidentifier() else None


class _ExtractVariable(cst.CSTTransformer):
    """``return f(g(x))`` → ``g_result = g(x)`` / ``return f(g_result)`` (first match only)."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.changed = 0
        self.extracted: tuple[str, str] | None = None

    def leave_IndentedBlock(self, original, updated):
        if self.changed:
            return updated
        body = list(updated.body)
        for i, stmt in enumerate(body):
            found = self._candidate(stmt)
            if found is None:
                continue
            arg_index, inner = found
            name = f"{_callee_name(inner)}_result"
            if name in self.taken or not name.isidentifier():
                continue
            ret = stmt.body[0]
            call = ret.value
            args = list(call.args)
            args[arg_index] = args[arg_index].with_changes(value=cst.Name(name))
            new_ret = stmt.with_changes(body=[ret.with_changes(value=call.with_changes(args=args))])
            assign = cst.SimpleStatementLine(
                body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=inner)],
                leading_lines=stmt.leading_lines)
            body[i:i + 1] = [assign, new_ret.with_changes(leading_lines=[])]
            self.changed = 1
            self.extracted = (_code(inner), name)
            return updated.with_changes(body=body)
        return updated

    def _candidate(self, stmt) -> tuple[int, cst.Call] | None:
        if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
                and isinstance(stmt.body[0], cst.Return)
                and isinstance(stmt.body[0].value, cst.Call)):
            return None
        call = stmt.body[0].value
        # only when the outer callee is a plain name or attribute: evaluating it first or
        # second cannot differ
        if not isinstance(call.func, cst.Name | cst.Attribute):
            return None
        calls = [i for i, a in enumerate(call.args) if isinstance(a.value, cst.Call)]
        if len(calls) != 1 or call.args[calls[0]].star:
            return None
        # the other arguments must be side-effect free, so hoisting keeps the order of effects
        others = [a.value for i, a in enumerate(call.args) if i != calls[0]]
        if any(not isinstance(v, cst.Name | cst.SimpleString | cst.Integer | cst.Attribute)
               for v in others):
            return None
        inner = call.args[calls[0]].value
        if _callee_name(inner) is None or _contains(inner, (cst.Yield, cst.Await, cst.Lambda,
                                                            cst.NamedExpr)):
            return None
        if not 10 <= len(_code(inner)) <= 70:
            return None
        return calls[0], inner


def extract_variable(code: Source) -> tuple[str, str, str] | None:
    """(rewritten code, extracted expression, new name) or None."""
    module = _module(code)
    if module is None:
        return None
    transformer = _ExtractVariable(_names_in(module))
    new = module.visit(transformer)
    if not transformer.changed or not _parses(new.code):
        return None
    expr, name = transformer.extracted
    return new.code, expr, name


# ------------------------------------------------------------------ type hints

def _literal_type(value: cst.BaseExpression) -> str | None:
    if isinstance(value, cst.Integer):
        return "int"
    if isinstance(value, cst.Float):
        return "float"
    if isinstance(value, cst.SimpleString | cst.ConcatenatedString | cst.FormattedString):
        prefix = value.prefix.lower() if isinstance(value, cst.SimpleString) else ""
        return "bytes" if "b" in prefix else "str"
    if isinstance(value, cst.Name) and value.value in ("True", "False"):
        return "bool"
    if isinstance(value, cst.UnaryOperation) and isinstance(value.expression,
                                                           cst.Integer | cst.Float):
        return _literal_type(value.expression)
    return None


def _is_bool_expr(value: cst.BaseExpression | None) -> bool:
    return (isinstance(value, cst.Name) and value.value in ("True", "False")
            or isinstance(value, cst.Comparison)
            or isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Not))


class _Returns(cst.CSTVisitor):
    """Return values and yields of one function, not of functions nested in it."""

    def __init__(self) -> None:
        self.values: list[cst.BaseExpression | None] = []
        self.yields = False

    def visit_FunctionDef(self, node) -> bool:
        return False

    def visit_Lambda(self, node) -> bool:
        return False

    def visit_Return(self, node) -> None:
        self.values.append(node.value)

    def visit_Yield(self, node) -> None:
        self.yields = True


def _return_type(fn: cst.FunctionDef) -> str:
    found = _Returns()
    fn.body.visit(found)
    values = [v for v in found.values if v is not None
              and not (isinstance(v, cst.Name) and v.value == "None")]
    if found.yields:
        return "object"
    if not values:
        return "None"
    if all(_is_bool_expr(v) for v in values):
        return "bool"
    kinds = {_literal_type(v) for v in values}
    if len(kinds) == 1 and None not in kinds and len(values) == len(found.values):
        return kinds.pop()
    return "object"


class _TypeHints(cst.CSTTransformer):
    """Annotate every parameter and return of every function: the literal type of a
    parameter's default, ``None`` for functions that return nothing, ``bool`` for
    predicates, else ``object`` (true of any value, so behaviour cannot change)."""

    def __init__(self) -> None:
        self.changed = 0
        self.params = 0
        self.class_depth = 0

    def visit_ClassDef(self, node) -> None:
        self.class_depth += 1

    def leave_ClassDef(self, original, updated):
        self.class_depth -= 1
        return updated

    def leave_FunctionDef(self, original, updated):
        params = updated.params

        def annotate(param: cst.Param, first: bool) -> cst.Param:
            if param.annotation is not None or (first and param.name.value in ("self", "cls")):
                return param
            hint = (_literal_type(param.default) if param.default is not None else None) \
                or "object"
            self.changed += 1
            self.params += 1
            param = param.with_changes(annotation=cst.Annotation(cst.parse_expression(hint)))
            if param.default is not None:  # PEP 8: spaces around = once annotated
                param = param.with_changes(equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(" "),
                    whitespace_after=cst.SimpleWhitespace(" ")))
            return param

        ordered = [*params.posonly_params, *params.params]
        first = ordered[0] if ordered else None
        new_params = params.with_changes(
            posonly_params=[annotate(p, p is first) for p in params.posonly_params],
            params=[annotate(p, p is first) for p in params.params],
            kwonly_params=[annotate(p, False) for p in params.kwonly_params],
        )
        if isinstance(params.star_arg, cst.Param):
            new_params = new_params.with_changes(star_arg=annotate(params.star_arg, False))
        if params.star_kwarg is not None:
            new_params = new_params.with_changes(star_kwarg=annotate(params.star_kwarg, False))
        returns = updated.returns
        if returns is None:
            self.changed += 1
            returns = cst.Annotation(cst.parse_expression(_return_type(original)))
        return updated.with_changes(params=new_params, returns=returns)


def type_hints(code: Source) -> str | None:
    """None also for functions without parameters to annotate: ``-> None`` alone teaches
    little."""
    transformer = _TypeHints()
    new = _run(code, transformer)
    return new if new is not None and transformer.params > 0 else None


# ------------------------------------------------------------------ search loop → any/all

def _returns_bool(stmt: cst.BaseStatement) -> bool | None:
    """True/False if ``stmt`` is exactly ``return True``/``return False``."""
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Return)):
        return None
    value = stmt.body[0].value
    if isinstance(value, cst.Name) and value.value in ("True", "False"):
        return value.value == "True"
    return None


class _AnyAll(cst.CSTTransformer):
    """``for x in xs: if c: return True`` + ``return False`` → ``return any(c for x in xs)``
    (and the ``all`` form). Both stop at the first hit, so evaluation is the same."""

    def __init__(self) -> None:
        self.changed = 0

    def leave_IndentedBlock(self, original, updated):
        body = list(updated.body)
        if len(body) < 2 or not isinstance(body[-2], cst.For):
            return updated
        loop, after = body[-2], _returns_bool(body[-1])
        if after is None or loop.orelse or loop.asynchronous or len(loop.body.body) != 1:
            return updated
        inner = loop.body.body[0]
        if not (isinstance(inner, cst.If) and inner.orelse is None
                and len(inner.body.body) == 1):
            return updated
        hit = _returns_bool(inner.body.body[0])
        if hit is None or hit == after or not _scope_safe(inner.test) \
                or not _scope_safe(loop.iter):
            return updated
        test = inner.test if hit else negate(inner.test)
        call = cst.Call(func=cst.Name("any" if hit else "all"), args=[cst.Arg(
            # the call's own parentheses serve the generator: any(x for x in xs)
            cst.GeneratorExp(elt=test, for_in=cst.CompFor(target=loop.target, iter=loop.iter),
                             lpar=[], rpar=[]))])
        ret = cst.SimpleStatementLine([cst.Return(value=call)],
                                      leading_lines=loop.leading_lines)
        self.changed += 1
        return updated.with_changes(body=[*body[:-2], ret])


def any_all(code: Source) -> str | None:
    return _run(code, _AnyAll())


# ------------------------------------------------------------------ loop → dict comprehension

def _dict_loop(assign: cst.BaseStatement, loop: cst.BaseStatement,
               rest: list[cst.BaseStatement]) -> cst.SimpleStatementLine | None:
    """``d = {}`` + ``for …: d[k] = v`` → ``d = {k: v for …}``."""
    if not (isinstance(assign, cst.SimpleStatementLine) and len(assign.body) == 1
            and isinstance(assign.body[0], cst.Assign) and len(assign.body[0].targets) == 1):
        return None
    target, value = assign.body[0].targets[0].target, assign.body[0].value
    if not (isinstance(target, cst.Name) and isinstance(value, cst.Dict) and not value.elements):
        return None
    if not isinstance(loop, cst.For) or loop.orelse or loop.asynchronous \
            or len(loop.body.body) != 1:
        return None
    inner = loop.body.body[0]
    if not (isinstance(inner, cst.SimpleStatementLine) and len(inner.body) == 1
            and isinstance(inner.body[0], cst.Assign) and len(inner.body[0].targets) == 1):
        return None
    sub = inner.body[0].targets[0].target
    if not (isinstance(sub, cst.Subscript) and isinstance(sub.value, cst.Name)
            and sub.value.value == target.value and len(sub.slice) == 1
            and isinstance(sub.slice[0].slice, cst.Index)):
        return None
    key, val = sub.slice[0].slice.value, inner.body[0].value
    # a comprehension evaluates the key before the value, the loop the other way round:
    # only rewrite when at most one of them can have side effects (calls)
    if _contains(key, (cst.Call,)) and _contains(val, (cst.Call,)):
        return None
    if not all(_scope_safe(e) for e in (key, val, loop.iter)):
        return None
    used = _names_in(key) | _names_in(val) | _names_in(loop.iter) | _names_in(loop.target)
    if target.value in used or any(_names_in(loop.target) & _names_in(s) for s in rest):
        return None
    comp = cst.DictComp(key=key, value=val,
                        for_in=cst.CompFor(target=loop.target, iter=loop.iter))
    return assign.with_changes(body=[cst.Assign(targets=[cst.AssignTarget(target=target)],
                                                value=comp)])


class _DictComprehension(_Comprehension):
    @staticmethod
    def _pair(first, loop, rest):
        return _dict_loop(first, loop, rest)


def dict_comprehension(code: Source) -> str | None:
    return _run(code, _DictComprehension())


# ------------------------------------------------------------------ shared

def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _module(code: Source) -> cst.Module | None:
    if isinstance(code, cst.Module):
        return code
    try:
        return cst.parse_module(code)
    except cst.ParserSyntaxError:
        return None


def _run(code: Source, transformer) -> str | None:
    module = _module(code)
    if module is None:
        return None
    new = module.visit(transformer)
    if not transformer.changed or new.code == module.code or not _parses(new.code):
        return None
    return new.code


def extract_variable_instruction(expr: str, name: str) -> str:
    return f"Extract the expression `{expr}` into a local variable named `{name}`."


def apply_all(code: str) -> list[tuple[str, str, dict]]:
    """Every codemod that applies to ``code``: (instruction, rewritten code, details)."""
    out = []
    try:  # the cheap parse first: loop rewrites need a loop, early returns an if
        kinds = {type(node) for node in ast.walk(ast.parse(code))}
    except SyntaxError:
        return out
    code = _module(code)
    if code is None:
        return out
    loops = ast.For in kinds
    if loops and (new := loop_to_comprehension(code)) is not None:
        out.append((READY_INSTRUCTIONS["comprehension"], new, {"codemod": "comprehension"}))
    if ast.If in kinds and (new := early_return(code)) is not None:
        out.append((READY_INSTRUCTIONS["early-return"], new, {"codemod": "early-return"}))
    if loops and (new := any_all(code)) is not None:
        out.append((READY_INSTRUCTIONS["any-all"], new, {"codemod": "any-all"}))
    if loops and (new := dict_comprehension(code)) is not None:
        out.append((READY_INSTRUCTIONS["dict-comprehension"], new,
                    {"codemod": "dict-comprehension"}))
    if (new := type_hints(code)) is not None:
        out.append((READY_INSTRUCTIONS["type-hints"], new, {"codemod": "type-hints"}))
    # "simplify" is answered by the rewrites that shrink the code without changing it
    for _, rewritten, details in list(out):
        if details["codemod"] in ("comprehension", "early-return", "any-all",
                                  "dict-comprehension"):
            out.append((READY_INSTRUCTIONS["simplify"], rewritten, {"codemod": "simplify",
                                                                   "via": details["codemod"]}))
            break
    if (found := extract_variable(code)) is not None:
        new, expr, name = found
        out.append((extract_variable_instruction(expr, name), new,
                    {"codemod": "extract-variable", "expr": expr, "name": name}))
    return out
