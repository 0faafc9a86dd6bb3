"""The repo suite's cross-file holes (CrossCodeEval's cut), their strata, the workspace a
task is given, and the held-out packages training must never read."""

from __future__ import annotations

from email.message import Message

import pytest
from helpers.synthetic_repo import SHOP, synthetic_repo

from covey_eval import repo
from covey_eval.summary import by_stratum, stratum_axes
from covey_training.packages import DEFAULT_EXCLUDE, permissive_packages


def _by_function(tasks) -> dict[str, set[bool]]:
    out: dict[str, set[bool]] = {}
    for task in tasks:
        out.setdefault(task.id.split(":")[1], set()).add(task.meta["cross_file"])
    return out


def test_a_hole_using_an_imported_function_of_another_file_is_cross_file(tmp_path):
    tasks = repo.tasks(synthetic_repo(tmp_path))
    kinds = _by_function(tasks)
    assert kinds["total"] == {True}  # scale_price, from pkg/helpers.py
    assert kinds["double_all"] == {False}  # local names only
    assert kinds["where"] == {False}  # join, from the standard library
    kept = repo.tasks(tmp_path, holes="cross-file")
    assert {t.id for t in kept} == {t.id for t in tasks if t.meta["cross_file"]}
    assert {t.id.split(":")[1] for t in kept} == {"total"} and len(kept) == 2


def test_strata_name_both_axes(tmp_path):
    tasks = {t.id: t for t in repo.tasks(synthetic_repo(tmp_path))}
    assert tasks["pkg/shop.py:total:single"].stratum == "cross-file/one-line"
    assert tasks["pkg/shop.py:total:multi"].stratum == "cross-file/multi-line"
    assert tasks["pkg/shop.py:double_all:single"].stratum == "in-file/one-line"
    assert tasks["pkg/shop.py:where:multi"].stratum == "in-file/multi-line"
    assert repo.stratum(True, False) == "cross-file/one-line"
    assert stratum_axes("in-file/multi-line") == ["in-file", "multi-line"]
    assert stratum_axes("HumanEval/3") == [] and stratum_axes("type-hints") == []


def test_by_stratum_sets_each_axis_against_the_other():
    rows = [{"stratum": "cross-file/one-line", "exact_match": 1.0},
            {"stratum": "cross-file/multi-line", "exact_match": 0.0},
            {"stratum": "in-file/one-line", "exact_match": 1.0},
            {"stratum": "HumanEval/3", "exact_match": 0.0}]
    found = by_stratum(rows)
    assert found["cross-file"] == {"n": 2, "exact_match": 0.5}
    assert found["in-file"] == {"n": 1, "exact_match": 1.0}
    assert found["one-line"] == {"n": 2, "exact_match": 1.0}
    assert found["multi-line"] == {"n": 1, "exact_match": 0.0}
    assert found["cross-file/one-line"] == {"n": 1, "exact_match": 1.0}
    assert found["HumanEval/3"] == {"n": 1, "exact_match": 0.0} and "HumanEval" not in found


def test_what_counts_as_a_use_of_another_files_name(tmp_path):
    synthetic_repo(tmp_path)
    index = repo.workspace_index(tmp_path)
    text = ("import pkg.helpers as h\nfrom pkg import helpers\n"
            "from pkg.helpers import Basket, scale_price as sp\n\n\n"
            "def f(x, Basket=None):\n    return x\n")
    names = repo.FileNames.of(index, "pkg/other.py", text)

    def cross(reference: str) -> bool:
        return repo.cross_file(reference, names, index)

    assert cross("return sp(x, 2)")
    assert cross("return helpers.scale_price(x, 2)") and cross("h.scale_price(x)")
    assert not cross("return helpers.unknown(x)")  # not defined in that module
    assert not cross("return self.sp(x)")  # another object's attribute
    assert not cross("return g(sp=1)")  # a keyword argument's name
    assert not cross('return "sp(x)"  # sp(x)')  # a string and a comment
    assert not cross("return Basket()")  # the file defines Basket itself (a parameter)


def test_a_name_the_rest_of_the_file_uses_is_not_cross_file(tmp_path):
    """CrossCodeEval's criterion: the current file alone cannot answer the hole."""
    synthetic_repo(tmp_path)
    index = repo.workspace_index(tmp_path)
    text = "from pkg.helpers import scale_price\n\n\ndef f(x):\n    return x\n"
    names = repo.FileNames.of(index, "pkg/other.py", text)
    assert repo.cross_file("return scale_price(x, 2)", names, index, "def f(x):\n")
    assert not repo.cross_file("return scale_price(x, 2)", names, index,
                               "def f(x):\n    y = scale_price(x, 3)\n")


def test_a_file_with_no_cross_file_holes_says_so(tmp_path):
    (tmp_path / "solo.py").write_text(SHOP.replace("from pkg.helpers import scale_price\n", "")
                                      .replace("scale_price", "round"))
    with pytest.raises(repo.RepoError, match="no cross-file holes"):
        repo.tasks(tmp_path, holes="cross-file")
    with pytest.raises(repo.RepoError, match="--holes"):
        repo.tasks(tmp_path, holes="some")


def test_the_workspace_holds_the_index_and_the_imported_files_as_open_tabs(tmp_path):
    synthetic_repo(tmp_path)
    for i in range(6):
        (tmp_path / "pkg" / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    (tmp_path / "pkg" / "many.py").write_text(
        "import json\nfrom pkg import many\n"
        + "".join(f"from pkg.m{i} import f{i}\n" for i in range(6))
        + "\n\ndef g(x):\n    a = f0(x)\n    b = f1(a)\n    return f2(b)\n")
    tasks = [t for t in repo.tasks(tmp_path) if t.meta["file"] == "pkg/many.py"]
    context = repo.RepoContext.for_tasks(tasks)
    workspace = context(tasks[0])
    assert workspace.key == "pkg/many.py" and len(workspace.index) >= 9
    tabs = context.open_tabs(tasks[0], workspace.index)
    assert tabs == [f"pkg/m{i}.py" for i in range(repo.OPEN_TABS)]  # never its own file
    assert {s.path for s in workspace.recent.similar("f0 x return", None, k=16)} <= set(tabs)
    assert context.indexes[str(tmp_path.resolve())] is workspace.index  # one index a run
    assert repo.RepoContext.for_tasks([]) is None


def test_held_out_packages_are_pinned_and_never_trained_on(tmp_path):
    assert len(repo.HELD_OUT_PACKAGES) >= 3  # the acceptance asks for three at least
    for name, held in repo.HELD_OUT_PACKAGES.items():
        assert held.version.count(".") >= 1 and held.licence
        assert name in DEFAULT_EXCLUDE

    class Dist:
        def __init__(self, name: str):
            self.metadata = Message()
            self.metadata["Name"] = name
            self.metadata["License-Expression"] = "MIT"
            self.version = "1.0"
            self.files = [f"{name}/__init__.py"]
            (tmp_path / "site-packages" / name).mkdir(parents=True)
            (tmp_path / "site-packages" / name / "__init__.py").write_text("")

        def locate_file(self, path):
            return tmp_path / "site-packages" / path

    dists = [Dist(name) for name in [*repo.HELD_OUT_PACKAGES, "fine"]]
    usable, _ = permissive_packages(dists)
    assert [p.name for p in usable] == ["fine"]
