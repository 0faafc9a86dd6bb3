"""Training data at scale: span kinds, licences, dedup, decontamination."""

from __future__ import annotations

import ast
import random
import textwrap
from email.message import Message
from pathlib import Path

from covey_training import dedup
from covey_training.data_completion import KIND_FAMILY, completion_examples
from covey_training.dataset import SourceSet, build_dataset
from covey_training.decontam import EvalNgrams
from covey_training.packages import licence_of, permissive_packages
from covey_training.sources import SourceFile

CODE = textwrap.dedent('''\
    import os


    def walk(root, suffix=".py"):
        found = []
        for dirpath, _, names in os.walk(root):
            for name in names:
                if name.endswith(suffix):
                    found.append(os.path.join(dirpath, name))
        total = len(found)
        return sorted(found)[:total]


    def scale(values, factor=2):
        out = {}
        for key, value in values.items():
            out[key] = value * factor + 1
        return out
    ''')


def test_completion_produces_every_span_family():
    src = SourceFile(root=None, rel="pkg/a.py", text=CODE, tree=ast.parse(CODE))
    examples = completion_examples(src, random.Random(0), per_file=60, budget=2000)
    families = {KIND_FAMILY[ex.meta["kind"]] for ex in examples}
    assert families == {"line", "rest", "token", "block", "block-rest"}
    for ex in examples:
        kind = KIND_FAMILY[ex.meta["kind"]]
        middle = ex.meta["middle"]
        assert ("\n" in middle.strip()) <= (kind in ("block", "block-rest"))
        if kind == "block-rest":  # runs to the end of its block: the next line dedents
            start, end = map(int, ex.source.rsplit(":", 1)[1].split("-"))
            rest = CODE[end + 1:].split("\n", 1)[0]
            indent = len(middle) - len(middle.lstrip()) + len(CODE[:start].rsplit("\n", 1)[1])
            assert len(rest) - len(rest.lstrip()) < indent or not rest.strip()


class _Dist:
    def __init__(self, root: Path, name: str, **fields):
        self.metadata = Message()
        self.metadata["Name"] = name
        for key, value in fields.items():
            if key == "Classifier":
                for c in value:
                    self.metadata["Classifier"] = c
            else:
                self.metadata[key.replace("_", "-")] = value
        self.version = "1.0"
        self.files = [f"{name}/__init__.py", f"{name}/core.py", f"{name}-1.0.dist-info/METADATA"]
        self._root = root
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (root / name / "core.py").write_text(CODE)

    def locate_file(self, path):
        return self._root / path


def test_only_permissively_licensed_packages_are_used(tmp_path):
    site = tmp_path / "site-packages"
    dists = [_Dist(site, "mitpkg", License_Expression="MIT"),
             _Dist(site, "gplpkg", License_Expression="GPL-3.0-or-later"),
             _Dist(site, "lgplmix", License_Expression="MIT AND LGPL-2.1-only"),
             _Dist(site, "bsdold", Classifier=["License :: OSI Approved :: BSD License"]),
             _Dist(site, "gplold", Classifier=["License :: OSI Approved :: GNU General "
                                               "Public License v3 (GPLv3)"]),
             _Dist(site, "apachetext", License="Apache 2.0"),
             _Dist(site, "mystery")]
    usable, skipped = permissive_packages(dists)
    assert {p.name: p.licence for p in usable} == {"mitpkg": "MIT", "bsdold": "BSD",
                                                   "apachetext": "Apache-2.0"}
    assert {name for name, _ in skipped} == {"gplpkg", "lgplmix", "gplold", "mystery"}
    assert usable[0].roots == (site / "apachetext",)


def test_licence_text_is_not_guessed_from():
    whole_text = Message()
    whole_text["License"] = "Copyright (c) 2020\nPermission is hereby granted..."
    assert licence_of(whole_text) is None
    either = Message()
    either["License-Expression"] = "Apache-2.0 OR BSD-3-Clause"
    assert licence_of(either) == "Apache-2.0 OR BSD-3-Clause"


def test_near_duplicates_share_a_key_and_are_dropped(tmp_path):
    assert dedup.key("x = 1", "def f():\n    ", "\nreturn x") == dedup.key(
        "x  =  1", "def f():\n\t", "\n return x")
    assert dedup.key("x = 1") != dedup.key("x = 2")
    for name in ("one", "two"):  # a vendored copy: same code, another header
        (tmp_path / f"{name}.py").write_text(f"# copy {name}\n" + CODE)
    examples, info = build_dataset("completion", [tmp_path], split="all", per_file=30,
                                   workers=1)
    assert info.duplicates > 0
    # only spans near the differing header survive twice
    assert sum(ex.source.startswith("two.py") for ex in examples) < len(examples) / 2


def test_a_planted_humaneval_solution_never_reaches_the_dataset(tmp_path):
    from covey_eval import humaneval

    problem = humaneval.problems()[12]
    planted = problem["prompt"] + problem["canonical_solution"]
    (tmp_path / "clean.py").write_text(CODE)
    (tmp_path / "copied.py").write_text(CODE.replace("scale", "grow") + "\n\n" + planted)
    ngrams = EvalNgrams()
    ngrams.add_many("humaneval", [p["prompt"] + p["canonical_solution"]
                                  for p in humaneval.problems()])
    examples, info = build_dataset("completion", [tmp_path], per_file=200, ngrams=ngrams,
                                   workers=1)
    assert info.decontamination["files"] == 1 and info.decontamination["removed"] >= 1
    body = problem["canonical_solution"]
    for ex in examples:
        middle = ex.meta["middle"].strip()
        assert not (len(middle) > 20 and middle in body), middle
    assert any(ex.source.startswith("copied.py") for ex in examples)  # the rest stays
    assert info.sources[0]["licence"] == "user-supplied"


def test_source_sets_are_counted_with_their_licence(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(CODE)
    sets = [SourceSet("pkg", "MIT", (tmp_path / "pkg",), "1.0")]
    examples, info = build_dataset("completion", source_sets=sets, split="all", workers=1)
    assert info.sources == [{"name": "pkg", "version": "1.0", "licence": "MIT", "files": 2,
                             "examples": len(examples)}]
    assert all(ex.source.startswith("pkg/") for ex in examples)  # split by package


DOCS = textwrap.dedent('''\
    def numpy_one(a, b):
        """Add.

        Parameters
        ----------
        a : int
            First.
        b : int
            Second.
        """
        return a + b


    def numpy_two(x):
        """Negate.

        Parameters
        ----------
        x : int
            The value.
        """
        return -x


    def google_style(path, mode):
        """Open a file.

        Args:
            path: Where.
            mode: How.
        """
        return open(path, mode)


    def summary_only(values, key):
        """Sort values by key."""
        return sorted(values, key=key)


    def half_documented(a, b):
        """Combine.

        Parameters
        ----------
        a : int
            Only this one.
        """
        return a, b


    def no_params():
        """Return the answer."""
        return 42
    ''')


def test_doc_rules_follow_the_file_convention_and_skip_summaries():
    from covey_training.data_doc import doc_examples, docstring_style, file_convention

    src = SourceFile(root=None, rel="m.py", text=DOCS, tree=ast.parse(DOCS))
    assert file_convention(src.tree) == "numpy"
    assert file_convention(ast.parse("def f(x):\n    'Plain.'\n")) == "google"
    assert docstring_style(":param x: the value\n") == "rest"
    examples = doc_examples(src, random.Random(0), per_file=20, budget=3000)
    kept = {ex.meta["name"]: ex.meta["rule"] for ex in examples}
    assert kept == {"numpy_one": "keep-parameters-documented",
                    "numpy_two": "keep-parameters-documented",
                    "google_style": "keep-other-style", "no_params": "keep-no-parameters"}
    assert examples.stats["drop-parameters-undocumented"] == 1  # summary_only
    assert examples.stats["drop-some-parameters-missing"] == 1  # half_documented
    assert all(ex.meta["convention"] == "numpy" for ex in examples)
