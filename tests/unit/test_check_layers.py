"""scripts/check_layers.py: a literal naming two or more tasks outside the task modules is a
switch in disguise, and fails the check."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from covey_specialists.tasks import NAMES

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_layers.py"


@pytest.fixture(scope="module")
def layers():
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flagged(layers, source: str) -> list[int]:
    return layers.task_lists(ast.parse(source))


def test_task_names_are_read_from_the_task_modules(layers):
    assert layers.TASK_NAMES == frozenset(NAMES)


def test_a_tuple_of_two_task_names_is_flagged_and_one_name_passes(layers):
    source = ('KINDS = ("completion", "doc")\n'
              'ONE = ("completion", "prefix")\n'
              'if kind == "doc":\n    pass\n')
    assert flagged(layers, source) == [1]


def test_lists_sets_dict_keys_and_nested_literals_are_flagged(layers):
    source = ('A = ["doc", "refactor"]\n'
              'B = {"doc", "completion"}\n'
              'C = {"completion": 900, "doc": 1400}\n'
              'def f(kinds=frozenset(("completion", "doc", "refactor"))):\n    pass\n'
              'D = {"refactor": 1}\n'
              'E = ("completion" + "x", "doc")\n')
    assert flagged(layers, source) == [1, 2, 3, 4]


def test_names_come_from_the_given_registry(layers):
    source = 'X = ("lint", "test")\n'
    assert flagged(layers, source) == []
    assert layers.task_lists(ast.parse(source), frozenset({"lint", "test"})) == [1]


def test_task_names_are_read_statically(layers, tmp_path):
    (tmp_path / "lint.py").write_text('NAME = "lint"\nOTHER = "x"\n')
    (tmp_path / "common.py").write_text('def f():\n    NAME = "inner"\n')
    assert layers.task_names(tmp_path) == frozenset({"lint"})
