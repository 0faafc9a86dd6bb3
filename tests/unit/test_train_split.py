"""Training's held-out split is the eval's: no file is in one's training set and the other's
held-out set."""

from __future__ import annotations

import random

from covey_eval.splits import is_heldout
from covey_training import sources


def test_training_holds_out_exactly_the_files_the_eval_holds_out():
    rng = random.Random(0)
    words = ["json", "email", "asyncio", "os", "pkg", "util", "core", "tests", "zipfile"]
    paths = [f"mod_{i}.py" for i in range(300)] + [
        "/".join(rng.choice(words) + str(rng.randrange(50)) for _ in range(rng.randint(1, 4)))
        + ".py" for _ in range(300)]
    held = [sources.is_held_out(p) for p in paths]
    assert held == [bool(is_heldout(p)) for p in paths]
    assert 0 < sum(held) < len(paths)  # the sample has both sides of the split


def test_a_repository_is_split_by_module_within_it(tmp_path):
    """By top-level name alone a repository's one package falls wholly on one side; inside
    a repository the unit is the module (a ``src/`` layout looked through), so training on
    it keeps modules of its own to judge it on."""
    from covey_eval.splits import is_heldout_in_repository, repository_key

    assert [repository_key(p) for p in ("src/pkg/core.py", "pkg/sub/deep/x.py", "setup.py",
                                        "tests/test_core.py", "pkg/sub/__init__.py")] == [
        "pkg/core", "pkg/sub/deep/x", "setup", "tests/test_core", "pkg/sub"]
    repo = tmp_path / "repo"
    for i in range(40):
        path = repo / "src" / "pkg" / f"mod_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("X = 1\n")
    held = {rel for _, rel in sources.iter_source_paths([repo], "heldout")}
    train = {rel for _, rel in sources.iter_source_paths([repo], "train")}
    assert held and train and not held & train and len(held | train) == 40
    assert held == {rel for rel in held | train if is_heldout_in_repository(rel)}
    # the eval's split would have held out all or none of it: one top-level name, "src"
    assert len({sources.is_held_out(rel) for rel in held | train}) == 1


def test_the_standard_library_keeps_the_evals_split():
    import sysconfig
    from pathlib import Path

    root = Path(sysconfig.get_paths()["stdlib"])
    for base, rel in sources.iter_source_paths([root], "all"):
        assert sources.held_out(base, rel) == sources.is_held_out(rel), rel


def test_the_context_index_of_a_repository_leaves_out_its_held_out_modules(tmp_path):
    from covey_training.data_completion import package_index

    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    for i in range(30):
        (repo / "pkg" / f"mod_{i}.py").write_text(f"def f_{i}():\n    return {i}\n")
    index = package_index(repo / "pkg", repo, train_only=True)
    held = {f"pkg/mod_{i}.py" for i in range(30)
            if sources.held_out(repo, f"pkg/mod_{i}.py")}
    assert held and all(index.get(rel) is None for rel in held)
    assert index.get(next(f"pkg/mod_{i}.py" for i in range(30)
                          if f"pkg/mod_{i}.py" not in held)) is not None
