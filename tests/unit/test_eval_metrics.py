"""Metric functions against values computed by hand."""

import math

import pytest

from covey_eval import metrics
from covey_specialists.tasks import similarity


def test_edit_similarity_kitten_sitting():
    # Levenshtein("kitten", "sitting") = 3, longer length 7
    assert similarity.edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert similarity.edit_similarity("", "") == 1.0
    assert similarity.edit_similarity("abc", "") == 0.0


def test_exact_match_ignores_trailing_whitespace_only():
    assert similarity.exact_match("    return x  \n", "    return x") == 1.0
    assert similarity.exact_match("return  x", "return x") == 0.0


def test_rouge_l_lcs_f1():
    # LCS of [the cat sat on the mat] / [the cat is on the mat] = 5 tokens; P = R = 5/6
    score = similarity.rouge_l("The cat sat on the mat", "the cat is on the mat")
    assert score == pytest.approx(5 / 6)
    # P = 2/2, R = 2/4 → F1 = 2/3
    assert similarity.rouge_l("a b", "a x b y") == pytest.approx(2 / 3)
    assert similarity.rouge_l("", "") == 1.0
    assert similarity.rouge_l("x", "") == 0.0


def test_bleu_smoothed_by_hand():
    # p1 = 3/4, p2 = (2+1)/(3+1), p3 = (1+1)/(2+1), p4 = (0+1)/(1+1), no brevity penalty
    expected = (3 / 4 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert similarity.bleu("a b c d", "a b c e") == pytest.approx(expected)
    assert similarity.bleu("the same words here", "the same words here") == pytest.approx(1.0)


def test_bleu_brevity_penalty():
    # every precision is 1, candidate 2 tokens vs reference 4: BP = exp(1 - 4/2)
    assert similarity.bleu("a b", "a b c d") == pytest.approx(math.exp(-1))


def test_percentile_interpolates():
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile([10], 95) == 10
    assert metrics.percentile([], 50) is None


def test_bootstrap_interval_of_constant_is_a_point():
    assert metrics.bootstrap_ci([1.0] * 30) == (1.0, 1.0, 1.0)


def test_bootstrap_interval_matches_binomial_width():
    mean, lo, hi = metrics.bootstrap_ci([0, 1] * 50, seed=1)
    assert mean == 0.5
    # normal approximation: ±1.96·sqrt(.25/100) ≈ ±0.098
    assert 0.38 < lo < 0.44 and 0.56 < hi < 0.62
    assert metrics.bootstrap_ci([0, 1] * 50, seed=1) == (mean, lo, hi)  # seeded
    assert metrics.bootstrap_ci([]) is None


def test_paired_bootstrap_of_a_constant_shift():
    a = [0.0, 0.5, 1.0, 0.25] * 10
    b = [x + 0.1 for x in a]
    diff, lo, hi = metrics.paired_bootstrap_ci(a, b)
    assert diff == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    with pytest.raises(ValueError):
        metrics.paired_bootstrap_ci([1.0], [1.0, 2.0])


def test_summary_breaks_refactor_results_down_per_instruction():
    from covey_eval.summary import by_stratum

    rows = [{"stratum": "type-hints", "behaviour_preserved": 1.0, "parses": 1.0},
            {"stratum": "type-hints", "behaviour_preserved": 0.0, "parses": 1.0},
            {"stratum": "early-return", "behaviour_preserved": 1.0, "parses": None}]
    assert by_stratum(rows) == {
        "early-return": {"n": 1, "behaviour_preserved": 1.0},
        "type-hints": {"n": 2, "behaviour_preserved": 0.5, "parses": 1.0}}


def test_refactor_success_needs_a_change_that_follows_the_instruction_and_the_tests():
    from covey_eval.tasks import Task
    from covey_specialists.tasks import refactor

    code = "def f(xs):\n    out = []\n    for x in xs:\n        out.append(x)\n    return out\n"
    task = Task(id="m.py:f", suite="s", kind="refactor", stratum="simplify", code=code,
                instruction="Simplify", reference=code, meta={"instruction_key": "simplify"})
    # unchanged code is "no bigger", but the editor would refuse it: not what was asked
    assert refactor.scores(task, code)["instruction_satisfied"] == 0.0
    shorter = "def f(xs):\n    return list(xs)\n"
    assert refactor.scores(task, shorter)["instruction_satisfied"] == 1.0
    row = {"parses": 1.0, "instruction_satisfied": 1.0, "behaviour_preserved": 1.0}
    assert refactor.combined_scores(row) == {"success": 1.0}
    assert refactor.combined_scores({**row, "behaviour_preserved": 0.0}) == {"success": 0.0}
    assert refactor.combined_scores({**row, "instruction_satisfied": 0.0}) == {"success": 0.0}
    # no tests ran: no success figure rather than a guessed one
    assert refactor.combined_scores({"parses": 1.0, "instruction_satisfied": 1.0}) == {}
