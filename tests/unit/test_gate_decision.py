"""The gate's decision: paired bootstrap intervals of (new − other) on the primary metric,
against the fair base and the adapter in use. Generators are fakes whose answers are right
on chosen examples, so each case's verdict is known."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from covey_specialists.tasks.completion import training_example
from covey_training import gate
from covey_training.examples import Example


def examples(n: int) -> list[Example]:
    out = []
    for i in range(n):
        built = training_example(f"def f{i}():\n    ", f"return {i} * {i}", "\n", False,
                                 "m.py", 1000)
        out.append(Example("completion", built.prompt, built.target, f"m.py:{i}",
                           built.meta))
    return out


def right_on(chosen) -> gate.Generate:
    """A generator that answers example i correctly when i is in ``chosen``; the prompts
    arrive in example order, which it checks."""
    chosen = set(chosen)

    def generate(prompts: list[str]) -> list[str]:
        assert all(f"def f{i}()" in p for i, p in enumerate(prompts))
        return [f"return {i} * {i}" if i in chosen else "pass" for i in range(len(prompts))]
    return generate


N = 30
ALL, NONE = range(N), ()


def test_clearly_better_than_base_and_previous_is_accepted():
    result = gate.evaluate("completion", examples(N), right_on(NONE), right_on(ALL),
                           right_on(range(0, N, 3)), previous_adapter="builtin:completion")
    assert result.improved
    base, previous = result.comparisons
    assert (base.other, previous.other) == ("base", "previous")
    assert base.mean_diff == 1.0 and base.lo == base.hi == 1.0 and base.n == N
    assert previous.mean_diff == pytest.approx(2 / 3) and previous.lo > 0
    assert result.tuned["exact_match"] == 1.0 and result.previous["exact_match"] == 0.3333
    data = json.loads(json.dumps(result.as_dict()))  # what gate.json and the card receive
    assert [c["other"] for c in data["comparisons"]] == ["base", "previous"]
    assert data["previous_adapter"] == "builtin:completion" and data["improved"] is True
    assert {"mean_diff", "lo", "hi", "n", "level", "better"} <= set(data["comparisons"][0])


def test_equal_to_the_base_is_refused():
    half = range(0, N, 2)
    result = gate.evaluate("completion", examples(N), right_on(half), right_on(half))
    (base,) = result.comparisons
    assert (base.mean_diff, base.lo, base.hi) == (0.0, 0.0, 0.0)
    assert not result.improved and "previous" not in result.as_dict()


def test_noisy_differences_are_refused():
    # right on different halves: as many wins as losses, the interval straddles zero
    result = gate.evaluate("completion", examples(N), right_on(range(0, N, 2)),
                           right_on(range(1, N, 2)))
    (base,) = result.comparisons
    assert base.lo < 0 < base.hi and not result.improved


def test_better_than_base_but_worse_than_the_previous_adapter_is_refused():
    result = gate.evaluate("completion", examples(N), right_on(NONE), right_on(range(N // 2)),
                           right_on(ALL))
    base, previous = result.comparisons
    assert base.better and not previous.better and previous.hi < 0
    assert not result.improved


def exact_interval(diffs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """The bootstrap distribution of the mean, exactly: every resample (n^n of them) is
    equally likely; each end is the smallest mean whose cumulative share reaches it."""
    means = sorted(float(np.mean(pick)) for pick in itertools.product(diffs, repeat=len(diffs)))
    tail = (1 - level) / 2

    def quantile(q: float) -> float:
        return next(m for i, m in enumerate(means, 1) if i / len(means) >= q - 1e-12)
    return float(np.mean(diffs)), quantile(tail), quantile(1 - tail)


@pytest.mark.parametrize("new, old, expected", [
    # diffs (1, 1, 0): resamples of all zeros have probability 1/27 ≈ 3.7% > 2.5%, so the
    # low end is 0 and all ones (8/27) puts the high end at 1: mean 2/3 in [0, 1]
    ([1, 1, 0], [0, 0, 0], (2 / 3, 0.0, 1.0)),
    # diffs (1, 1, 1): every resample has mean 1
    ([1, 1, 1], [0, 0, 0], (1.0, 1.0, 1.0)),
    # diffs (1, 0, -1, 0): mean 0; a mean of −1 has probability 1/256, one of −0.75 (three
    # −1s and a 0) 4·(1/4)³·(2/4) = 1/32, together 3.5% ≥ 2.5%: the ends are ∓0.75
    ([1, 0, 0, 0], [0, 0, 1, 0], (0.0, -0.75, 0.75)),
])
def test_interval_on_a_tiny_set_matches_a_hand_computation(new, old, expected):
    c = gate.compare("base", new, old, seed=0)
    diffs = [a - b for a, b in zip(new, old, strict=True)]
    exact = exact_interval(diffs)
    assert exact == pytest.approx(expected)
    assert (c.mean_diff, c.lo, c.hi) == pytest.approx(expected, abs=0.02)
    assert c.better is (expected[1] > 0)
