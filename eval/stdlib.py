"""Suites cut from the installed CPython standard library (PSF licence).

Only held-out modules are used (:mod:`covey_eval.splits`), so the eval never sees code the
specialists were trained on. Nothing is copied into Covey: a task is a file and offsets,
and its text is read from the installed file when the suite loads. Task choice is
deterministic for a given Python version (positions come from a hash, not a global RNG).

- ``stdlib-fim``: completion tasks; the middle is one body line, or a run of 2–6 body lines
  starting at a statement (scored by exact match and edit similarity: no tests run).
- ``stdlib-doc``: functions with a docstring; the input is the function without it, the
  reference is the docstring.
- ``stdlib-refactor``: functions of 5–40 lines from modules with a ``Lib/test`` file; the
  instruction is one that applies to the function (checked on the result's AST), and
  behaviour is checked by running the module's tests with the function replaced.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import textwrap
from pathlib import Path

from covey_eval.splits import is_heldout, stdlib_root
from covey_eval.tasks import Task
from covey_specialists.tasks.refactor import READY_INSTRUCTIONS, nesting_depth

EXCLUDED_TOP = {"test", "idlelib", "site-packages", "ensurepip", "lib2to3", "turtledemo",
                "tkinter", "__pycache__", "venv", "this.py", "antigravity.py"}
MAX_FILE_BYTES = 400_000
# Held-out modules whose Lib/test file passes with the original code inside the sandbox
# (as nobody, no network). Others need resources the sandbox denies, or test a C
# accelerator that replacing the Python function would not touch (operator, for one).
BEHAVIOUR_TESTED = {"abc", "cmd", "codeop", "copy", "copyreg", "glob", "hmac", "optparse",
                    "stringprep", "xdrlib"}


def _rank(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


@functools.cache
def heldout_files() -> tuple[str, ...]:
    """Held-out .py files, relative to the stdlib root, sorted."""
    root = stdlib_root()
    out = []
    for top in sorted(root.iterdir()):
        if top.name in EXCLUDED_TOP or top.name.startswith("config-") or not is_heldout(top):
            continue
        files = [top] if top.suffix == ".py" else sorted(top.rglob("*.py"))
        for path in files:
            rel = path.relative_to(root)
            if "test" in rel.parts or "tests" in rel.parts or "__pycache__" in rel.parts:
                continue
            if path.stat().st_size <= MAX_FILE_BYTES:
                out.append(rel.as_posix())
    return tuple(out)


@functools.cache
def source_text(rel: str) -> str:
    return (stdlib_root() / rel).read_text(encoding="utf-8")


@functools.cache
def _functions(rel: str) -> tuple[tuple[str, ast.FunctionDef], ...]:
    """(qualname, node) for every function and method in the file."""
    try:
        tree = ast.parse(source_text(rel))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return ()
    return tuple(_walk_functions(tree))


def _walk_functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef]]:
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + child.name, child))
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
    visit(tree, "")
    return out


def line_offsets(text: str) -> list[int]:
    """Character offset of the start of each line (1-based line n is at index n-1), and
    the text's length last."""
    offsets, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        offsets.append(pos)
    return offsets


def _module_name(rel: str) -> str:
    name = rel[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


# ---------------------------------------------------------------- fill in the middle

def fim_tasks() -> tuple[Task, ...]:
    out = []
    for rel in heldout_files():
        out.extend(fim_tasks_in(rel, source_text(rel), "stdlib-fim", rel.split("/")[0]))
    return tuple(out)


def fim_tasks_in(rel: str, text: str, suite: str, stratum: str) -> list[Task]:
    """One single-line and one multi-line hole per function of 3+ body lines in ``text``."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    offsets = line_offsets(text)
    lines = text.splitlines(keepends=True)
    out = []
    for qualname, fn in _walk_functions(tree):
        body_start = fn.body[0].lineno - 1
        if is_docstring(fn.body[0]):
            if len(fn.body) < 2:
                continue
            body_start = fn.body[1].lineno - 1
        end = fn.end_lineno  # exclusive, 0-based
        body = [i for i in range(body_start, end) if lines[i].strip()
                and not lines[i].strip().startswith("#")]
        if len(body) < 3 or end - body_start > 80:
            continue
        line = body[_rank(rel, qualname, "single") % len(body)]
        out.append(_fim_task(suite, stratum, rel, qualname, text, offsets, line, line + 1,
                             False))
        starts = sorted({s.lineno - 1 for s in ast.walk(fn) if isinstance(s, ast.stmt)
                         and s is not fn and body_start <= s.lineno - 1 < end - 1})
        if starts:
            first = starts[_rank(rel, qualname, "multi") % len(starts)]
            last = min(first + 2 + _rank(rel, qualname, "size") % 5, end)
            while last > first + 1 and not lines[last - 1].strip():
                last -= 1
            out.append(_fim_task(suite, stratum, rel, qualname, text, offsets, first, last,
                                 True))
    return out


def is_docstring(node: ast.stmt) -> bool:
    """Whether ``node`` is a bare string literal (a docstring where it opens a body)."""
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _fim_task(suite: str, stratum: str, rel: str, qualname: str, text: str,
              offsets: list[int], first: int, last: int, multiline: bool) -> Task:
    """Middle = lines first..last-1 without the final newline, starting at the indent."""
    start, stop = offsets[first], offsets[last] - 1
    line_text = text[start:offsets[first + 1]]
    start += len(line_text) - len(line_text.lstrip(" \t"))  # cursor after the indentation
    kind = "multi" if multiline else "single"
    return Task(id=f"{rel}:{qualname}:{kind}", suite=suite, kind="completion",
                stratum=stratum, prefix=text[:start], suffix=text[stop:],
                reference=text[start:stop], multiline=multiline,
                meta={"file": rel, "start": start, "end": stop, "lines": last - first})


# ---------------------------------------------------------------- docstrings

def doc_tasks() -> tuple[Task, ...]:
    out = []
    for rel in heldout_files():
        text = source_text(rel)
        for qualname, fn in _functions(rel):
            doc = ast.get_docstring(fn)
            if not doc or len(doc) < 20 or len(fn.body) < 2:
                continue
            code, params = _without_docstring(text, fn)
            if code is None or len(code) > 3000:
                continue
            out.append(Task(id=f"{rel}:{qualname}", suite="stdlib-doc", kind="doc",
                            stratum=rel.split("/")[0], code=code, reference=doc,
                            meta={"file": rel, "qualname": qualname, "params": params,
                                  "lineno": fn.lineno}))
    return tuple(out)


def _function_text(text: str, fn: ast.FunctionDef) -> str:
    lines = text.splitlines(keepends=True)
    first = (fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno) - 1
    return textwrap.dedent("".join(lines[first:fn.end_lineno]))


def _without_docstring(text: str, fn: ast.FunctionDef) -> tuple[str | None, list[str]]:
    lines = text.splitlines(keepends=True)
    first = (fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno) - 1
    doc_node = fn.body[0]
    if doc_node.lineno == fn.lineno:  # one-line def: nowhere to put a docstring block
        return None, []
    kept = lines[first:doc_node.lineno - 1] + lines[doc_node.end_lineno:fn.end_lineno]
    code = textwrap.dedent("".join(kept))
    args = fn.args
    params = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
              if a.arg not in ("self", "cls")]
    params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return code, params


# ---------------------------------------------------------------- refactoring

def _has_list_append_loop(fn: ast.AST) -> bool:
    for node in ast.walk(fn):
        if isinstance(node, ast.For) and len(node.body) == 1:
            stmt = node.body[0]
            if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                    and isinstance(stmt.value.func, ast.Attribute)
                    and stmt.value.func.attr == "append"):
                return True
    return False


def choose_instruction(fn: ast.FunctionDef) -> str:
    """The ready instruction that applies to this function (checked later on the AST)."""
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    if _has_list_append_loop(fn):
        return "comprehension"
    if nesting_depth(fn) >= 3:
        return "early-return"
    if any(a.annotation is None and a.arg not in ("self", "cls") for a in args) \
            and fn.returns is None:
        return "type-hints"
    return "simplify"


@functools.cache
def _test_module(rel: str) -> str | None:
    top = rel.split("/")[0].removesuffix(".py")
    if top not in BEHAVIOUR_TESTED:
        return None
    for candidate in (f"test_{top}.py", f"test_{top}"):
        if (stdlib_root() / "test" / candidate).exists():
            return f"test.test_{top}"
    return None


def _calls_super(fn: ast.AST) -> bool:
    """Zero-argument super() needs the real class cell, which a swapped method lacks."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "super"
               for n in ast.walk(fn))


def refactor_tasks() -> tuple[Task, ...]:
    out = []
    for rel in heldout_files():
        test_module = _test_module(rel)
        if test_module is None:
            continue
        text = source_text(rel)
        for qualname, fn in _functions(rel):
            size = fn.end_lineno - fn.lineno + 1
            if not 5 <= size <= 40 or qualname.count(".") > 1 or _calls_super(fn):
                continue
            instruction = choose_instruction(fn)
            code = _function_text(text, fn)
            out.append(Task(
                id=f"{rel}:{qualname}", suite="stdlib-refactor", kind="refactor",
                stratum=instruction, code=code, instruction=READY_INSTRUCTIONS[instruction],
                reference=code,
                meta={"file": rel, "qualname": qualname, "module": _module_name(rel),
                      "test_module": test_module, "instruction_key": instruction}))
    return tuple(out)


def behaviour_program(task: Task, new_code: str) -> str:
    """A program that swaps the refactored function into its module and runs the tests."""
    module, test_module = task.meta["module"], task.meta["test_module"]
    qualname = task.meta["qualname"]
    owner, _, name = qualname.rpartition(".")
    if owner:
        # compiled inside a class of the same name, so private names mangle as before
        code = f"class {owner}:\n" + textwrap.indent(new_code, "    ")
        swap = textwrap.dedent(f"""\
            original = namespace[{owner!r}]
            exec(compile({code!r}, "refactored.py", "exec", flags, dont_inherit=True),
                 namespace)
            new = vars(namespace[{owner!r}])[{name!r}]
            namespace[{owner!r}] = original
            setattr(original, {name!r}, new)
            """)
    else:
        swap = textwrap.dedent(f"""\
            saved = namespace.get({name!r})
            exec(compile({new_code!r}, "refactored.py", "exec", flags, dont_inherit=True),
                 namespace)
            if saved is not None and getattr(tests, {name!r}, None) is saved:
                setattr(tests, {name!r}, namespace[{name!r}])
            """)
    # compiled with the module's own __future__ flags, not the program's: a function that
    # calls compile() passes its flags on, and the module's tests compare code objects
    return textwrap.dedent(f"""\
        import __future__, sys, unittest
        import {module} as target
        import {test_module} as tests
        namespace = target.__dict__
        flags = sum(v.compiler_flag for v in list(namespace.values())
                    if isinstance(v, __future__._Feature))
        """) + swap + textwrap.dedent("""\
        suite = unittest.defaultTestLoader.loadTestsFromModule(tests)
        result = unittest.TextTestRunner(stream=sys.stderr, verbosity=0).run(suite)
        sys.exit(0 if result.wasSuccessful() else 1)
        """)


def stdlib_file(rel: str) -> Path:
    return stdlib_root() / rel

