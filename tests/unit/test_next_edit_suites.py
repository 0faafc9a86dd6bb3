"""The next-edit suites: synthetic from held-out stdlib modules, real from committed package
changes; each task's window and reference line up, and the real packages are held out."""

import json

import pytest

from covey_eval import next_edit as suites
from covey_eval.suites import load
from covey_specialists.tasks import next_edit as ne
from covey_training.packages import DEFAULT_EXCLUDE


@pytest.mark.parametrize("name", ["next-edit", "next-edit-real"])
def test_every_task_is_a_window_its_edit_history_and_the_window_expected(name):
    tasks = load(name)
    assert len(tasks) > 200 and len({t.id for t in tasks}) == len(tasks)
    due = [t for t in tasks if t.reference != t.meta["window"]]
    assert 0.3 < len(due) / len(tasks) < 0.7  # positives and negatives both
    for task in tasks:
        doc, where = ne.eval_target(task)
        assert where.edits and doc.text[where.offset:].startswith(where.edits[-1].after)
        assert ne.rewrite(task.meta["window"], ne.hunks(task.meta["window"],
                                                         task.reference)) == task.reference


def test_the_real_suite_names_its_sources_and_their_packages_are_never_trained_on():
    sources = json.loads(suites.REAL_SOURCES.read_text())
    assert {s["package"] for s in sources} == set(suites.HELD_OUT_PACKAGES)
    for source in sources:
        assert source["licence"] and source["tasks"] > 0
        assert (suites.REAL.parent / "licences" / f"{source['package']}.txt").read_text()
        assert source["package"] in DEFAULT_EXCLUDE
    tasks = load("next-edit-real")
    assert {t.meta["package"] for t in tasks} == set(suites.HELD_OUT_PACKAGES)
    assert {t.stratum for t in tasks} == {"real", "real-lone"}
