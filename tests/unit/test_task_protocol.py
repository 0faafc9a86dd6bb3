"""Every registered task module has the declared shape (``TaskModule``), with the same
parameters, so every caller can take the same road through any task."""

from __future__ import annotations

import inspect

import pytest

from covey_specialists.document import Document
from covey_specialists.edit_history import RecentEdit
from covey_specialists.table import load_table
from covey_specialists.tasks import TASKS, TaskModule, Where
from covey_specialists.tasks.common import Edit, EditError

DECLARED = {name: member for name, member in vars(TaskModule).items()
            if inspect.isfunction(member) and not name.startswith("_")}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_module_satisfies_the_protocol(name):
    module = TASKS[name]
    assert isinstance(module, TaskModule)
    assert module.NAME == name
    for attr in TaskModule.__annotations__:
        assert hasattr(module, attr), f"{name} lacks {attr}"


@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("function", sorted(DECLARED))
def test_every_function_takes_the_declared_parameters(name, function):
    declared = list(inspect.signature(DECLARED[function]).parameters)[1:]  # without self
    if declared == ["args", "kwargs"]:
        return  # each task's training examples are built from its own spans
    actual = list(inspect.signature(getattr(TASKS[name], function)).parameters)
    assert actual == declared, f"{name}.{function}{actual} is not {function}{declared}"


def test_a_module_missing_a_step_is_not_a_task():
    class Incomplete:
        NAME = "x"

    assert not isinstance(Incomplete(), TaskModule)


SOURCE = "def scale(values, factor):\n    out = []\n    for v in values:\n        out.append(v * factor)\n    return out\n"  # noqa: E501
WHERE = {"completion": Where(offset=SOURCE.index("out = []"), multiline=False),
         "doc": Where(line=0),
         "refactor": Where(line=1, last_line=4, instruction="comprehension"),
         "next-edit": Where(offset=0, edits=(RecentEdit(
             "s.py", 0, "def scale(values, factor):\n", "def scale(values, size):\n"),))}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_plan_then_finish_gives_an_edit_or_says_why_not(name):
    """The road every caller takes, on one document: plan → finish (an Edit, or
    EditError for an empty answer)."""
    module = TASKS[name]
    spec = load_table().for_task(name)
    plan = module.plan(Document("file:///s.py", SOURCE, "python"), WHERE[name], spec)
    assert plan.prompt.task == name and plan.doc.text == SOURCE
    assert module.label(plan)
    with pytest.raises(EditError):
        module.finish(plan, "")
    assert module.problem(plan, "") is not None
    fair = module.plan(plan.doc, WHERE[name], spec, fair_base=True)
    assert fair.prompt.format == module.FAIR_BASE_FORMAT
    answer = {"completion": "result = []",
              "doc": "Scale each value by factor.\n\nArgs:\n    values: numbers\n"
                     "    factor: the multiplier",
              "refactor": "    return [v * factor for v in values]\n",
              "next-edit": "4|        out.append(v * size)"}[name]
    edit = module.finish(plan, answer)
    assert isinstance(edit, Edit) and edit.new_text.strip()
