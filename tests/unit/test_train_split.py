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
