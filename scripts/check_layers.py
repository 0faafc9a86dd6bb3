"""Check that Covey's packages import one way, that no list of tasks hides outside the
task modules, and count task-name switches.

Every import is read from the syntax tree, including imports inside functions (a hidden
import is still a dependency). Exit status 1 when a package imports one above it, when the
package graph or the module graph has a cycle, when a list, tuple, set or dict literal
outside the task modules names two or more tasks (the registry,
``covey_specialists.tasks.TASKS``, is the only list), or when more than MAX_TASK_SWITCHES
comparisons with a task name sit outside the task modules.

Task names are read from the task modules' ``NAME = "..."`` statically, so a new task
module extends the check.

    python scripts/check_layers.py          # prints the graph and the switch count
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: a package may import only packages listed before it.
LAYERS = ["covey_settings", "covey_usage", "covey_specialists", "covey_server", "covey_eval",
          "covey_training", "covey_cli"]
FOLDERS = {"settings": "covey_settings", "usage": "covey_usage",
           "specialists": "covey_specialists", "server": "covey_server", "eval": "covey_eval",
           "training": "covey_training", "cli": "covey_cli"}
TASK_MODULES = ("specialists/tasks/",)
MAX_TASK_SWITCHES = 6


def task_names(folder: Path = ROOT / TASK_MODULES[0]) -> frozenset[str]:
    """The registered tasks' names: each task module's module-level ``NAME = "..."``."""
    names = set()
    for path in sorted(folder.glob("*.py")):
        for node in ast.parse(path.read_text(), str(path)).body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                    and any(isinstance(t, ast.Name) and t.id == "NAME" for t in node.targets)):
                names.add(node.value.value)
    return frozenset(names)


TASK_NAMES = task_names()


def python_files():
    for folder in FOLDERS:
        yield from sorted((ROOT / folder).rglob("*.py"))


def module_name(rel: str) -> str:
    folder, rest = rel.split("/", 1)
    dotted = rest.removesuffix(".py").replace("/", ".").removesuffix("__init__").rstrip(".")
    return FOLDERS[folder] + ("." + dotted if dotted else "")


def imported_modules(tree: ast.AST, known: set[str]) -> set[str]:
    """Covey modules this file imports (``from pkg import submodule`` names the submodule)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & known
            found.update(subs or ({node.module} & known))
    return found


def imported_packages(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


def task_lists(tree: ast.AST, names: frozenset[str] = TASK_NAMES) -> list[int]:
    """Lines of list, tuple, set or dict literals naming two or more tasks among their
    elements (a dict's keys and values): a per-task table outside the task modules."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None] + node.values
        else:
            continue
        named = {v.value for v in items if isinstance(v, ast.Constant) and v.value in names}
        if len(named) >= 2:
            lines.append(node.lineno)
    return lines


def task_switches(tree: ast.AST) -> list[int]:
    """Lines comparing something with a task name (``x == "doc"``, ``x in ("doc", …)``)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for op, right in zip(node.ops, node.comparators, strict=True):
            values = [right]
            if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.Set,
                                                                          ast.List)):
                values = right.elts
            if isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) and any(
                    isinstance(v, ast.Constant) and v.value in TASK_NAMES for v in values):
                lines.append(node.lineno)
    return lines


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if state.get(nxt) is None and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if state.get(node) is None and (cycle := visit(node)):
            return cycle
    return None


def main() -> int:
    graph: dict[str, set[str]] = defaultdict(set)
    modules: dict[str, set[str]] = {}
    upward: list[str] = []
    switches: list[str] = []
    lists: list[str] = []
    trees = {path.relative_to(ROOT).as_posix(): ast.parse(path.read_text(), str(path))
             for path in python_files()}
    known = {module_name(rel) for rel in trees}
    for rel, tree in trees.items():
        package = FOLDERS[rel.split("/", 1)[0]]
        modules[module_name(rel)] = imported_modules(tree, known) - {module_name(rel)}
        for target in imported_packages(tree) - {package}:
            graph[package].add(target)
            if LAYERS.index(target) > LAYERS.index(package):
                upward.append(f"{rel}: {package} imports {target}, a layer above it")
        if not rel.startswith(TASK_MODULES):
            switches += [f"{rel}:{line}" for line in task_switches(tree)]
            lists += [f"{rel}:{line}" for line in task_lists(tree)]
    for package in LAYERS:
        print(f"{package} -> {', '.join(sorted(graph.get(package, ()))) or '(nothing)'}")
    cycle = find_cycle(graph)
    module_cycle = find_cycle(modules)
    print(f"task-name comparisons outside the task modules: {len(switches)} "
          f"(at most {MAX_TASK_SWITCHES})")
    for where in switches:
        print(f"  {where}")
    problems = upward + [f"{where}: a literal naming two or more tasks (use the registry, "
                         "covey_specialists.tasks)" for where in lists]
    problems += [f"cycle: {' -> '.join(cycle)}"] if cycle else []
    problems += [f"module cycle: {' -> '.join(module_cycle)}"] if module_cycle else []
    if len(switches) > MAX_TASK_SWITCHES:
        problems.append(f"{len(switches)} task-name comparisons outside the task modules")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
