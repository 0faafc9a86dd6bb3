"""Training reads everything per task from the task's own modules: no list of tasks."""

from __future__ import annotations

import pytest

from covey_specialists.tasks import NAMES, task_module
from covey_training import dataset


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_task_declares_its_training_settings(name):
    module = task_module(name)
    assert module.TRAIN_BUDGET > 0 and module.TRAIN_PER_FILE > 0
    assert callable(dataset.builder(name))


def test_an_unknown_task_is_refused_naming_the_registered_ones():
    with pytest.raises(ValueError, match="completion"):
        dataset.data_module("lint")
    with pytest.raises(ValueError, match="unknown task"):
        dataset.build_dataset("lint", [])


def test_refactor_and_next_edit_alone_are_rebalanced():
    assert [n for n in NAMES if hasattr(dataset.data_module(n), "balance")] == [
        "refactor", "next-edit"]
