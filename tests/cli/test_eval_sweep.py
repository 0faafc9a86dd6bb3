"""The routing sweep's replay (pure): the choice per task matches the live runner's rules,
points span never to always-baseline, costs and escalation rates add up, and the
recommended point is the cheapest near the best."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from covey_eval import report, sweep
from covey_eval.render import sweep_table
from covey_specialists.table import Specialist


def row(system, task, score, *, status="ok", invalid=None, mean=None, low=None, spent=0.0):
    return {"system": system, "task": task, "pass@1": score, "status": status,
            "invalid_reason": invalid, "mean_logprob": mean, "min_logprob": low,
            "spent_usd": spent}


def spec(policy, mean=-1.0, token=-6.0):
    return Specialist(key="s", routing=policy, min_mean_logprob=mean, min_token_logprob=token)


GOOD = row("specialist", "t", 1.0, mean=-0.2, low=-1.0)
UNSURE = row("specialist", "t", 1.0, mean=-3.0, low=-9.0)
INVALID = row("specialist", "t", 0.0, invalid="does not parse", mean=-0.1, low=-0.5)
DOWN = row("specialist", "t", 0.0, status="error")
BASE_OK = row("baseline", "t", 1.0)
BASE_BAD = row("baseline", "t", 0.0, invalid="does not parse")
BASE_DOWN = row("baseline", "t", 0.0, status="error")


@pytest.mark.parametrize("policy, specialist, baseline, expected", [
    ("never", INVALID, BASE_OK, ("specialist", True, False)),  # never: served unchecked
    ("never", DOWN, BASE_OK, ("none", True, False)),
    ("on-failure", GOOD, BASE_OK, ("specialist", True, False)),
    ("on-failure", INVALID, BASE_OK, ("baseline", True, True)),
    ("on-failure", DOWN, BASE_OK, ("baseline", True, True)),
    ("on-failure", INVALID, BASE_DOWN, ("none", True, True)),
    ("on-failure", INVALID, BASE_BAD, ("none", True, True)),
    ("on-low-confidence", UNSURE, BASE_OK, ("baseline", True, True)),
    ("on-low-confidence", UNSURE, BASE_DOWN, ("specialist", True, True)),
    ("always-baseline", GOOD, BASE_OK, ("baseline", False, True)),
    ("always-baseline", GOOD, BASE_DOWN, ("specialist", True, True)),
    ("on-failure", INVALID, None, ("none", True, False)),  # no baseline configured
])
def test_route_task_follows_the_live_runner(policy, specialist, baseline, expected):
    assert sweep.route_task(spec(policy), specialist, baseline) == expected


def collection(n: int = 10) -> dict:
    """Task i: the specialist is right on even tasks, with mean log-prob −i/2; the baseline
    is always right and costs $0.01; the specialist costs $0.0001."""
    rows = []
    for i in range(n):
        task = f"t{i}"
        rows.append(row("specialist", task, float(i % 2 == 0), mean=-i / 2, low=-i,
                        spent=0.0001))
        rows.append(row("baseline", task, 1.0, spent=0.01))
        rows.append(row("empty", task, 0.0))
    summary = {name: {"metrics": {"pass@1": {"mean": 0.5}}, "label": name}
               for name in ("specialist", "baseline", "empty")}
    summary["baseline"]["label"] = "untuned base standing in for the baseline LLM"
    return {"run_id": "r", "meta": {"seed": 0}, "summary": summary, "rows": rows}


def test_points_span_never_to_always_baseline_with_costs_and_rates():
    result = sweep.sweep(collection(), points=4, tolerance=0.0)
    points = result["points"]
    assert points[0]["label"] == "never" and points[-1]["label"] == "always-baseline"
    never, always = points[0], points[-1]
    assert never["escalation_rate"] == 0.0 and always["escalation_rate"] == 1.0
    assert never["quality"]["pass@1"]["mean"] == 0.5
    assert always["quality"]["pass@1"]["mean"] == 1.0
    assert never["spent_per_1k"] == pytest.approx(0.0001 * 1000)
    assert always["spent_per_1k"] == pytest.approx(0.01 * 1000)  # the specialist not asked
    mean_series = [p for p in points if p["signal"] == "mean"]
    assert len(mean_series) == 4
    rates = [p["escalation_rate"] for p in mean_series]
    assert rates == sorted(rates) and 0 < rates[0] < rates[-1] < 1
    for p in mean_series:  # escalated tasks pay both calls
        n_esc = p["escalation_rate"] * 10
        assert p["spent_per_1k"] == pytest.approx((10 * 0.0001 + n_esc * 0.01) / 10 * 1000)
    assert result["recommended"] == len(points) - 1  # only always-baseline reaches 100%


def test_recommended_is_the_cheapest_within_tolerance():
    points = [{"quality": {"m": {"mean": q}}, "spent_per_1k": c}
              for q, c in [(0.50, 0.1), (0.79, 2.0), (0.80, 5.0), (0.78, 1.0)]]
    assert sweep.recommend(points, "m", 0.0) == 2
    assert sweep.recommend(points, "m", 0.01) == 1
    assert sweep.recommend(points, "m", 0.02) == 3
    assert sweep.recommend(points, "m", 1.0) == 0


def test_report_and_table_mark_the_recommended_point_and_name_the_stand_in():
    result = collection()
    result["sweep"] = sweep.sweep(result, points=3, tolerance=0.0)
    html = report.sweep_section(result["sweep"])
    assert "untuned base standing in for the baseline LLM" in html
    assert html.count("★") >= 2 and "<svg" in html and "<polyline" in html
    rendered = sweep_table(result)
    assert rendered.row_count == len(result["sweep"]["points"])


def test_sweep_cli_needs_a_suite_or_a_run(covey_home):
    from covey_cli import main

    for args in ([], ["--suite", "humaneval-sl", "--from-run", "last"],
                 ["--from-run", "last", "--from-usage"]):
        out = CliRunner().invoke(main, ["eval", "sweep", *args])
        assert out.exit_code == 1 and "give one of --suite" in out.output
    out = CliRunner().invoke(main, ["eval", "sweep", "--from-run", "last"])
    assert out.exit_code == 1 and out.output.startswith("Error: no usage database")


# ------------------------------------------------------------------ show threshold

def answer(task, right, mean, *, status="ok", text="x"):
    return {"system": "specialist", "task": task, "pass@1": float(right), "status": status,
            "answer": text, "mean_logprob": mean}


# Ten tasks, by mean log-prob: the sure ones are mostly right, the unsure mostly wrong; one
# call failed and one answer is empty (never shown), one has no log-probs (always shown).
SHOW_ROWS = [
    answer("a", True, -0.1), answer("b", True, -0.2), answer("c", True, -0.3),
    answer("d", False, -0.4), answer("e", True, -0.8), answer("f", False, -1.2),
    answer("g", False, -2.0), answer("h", False, -0.05, status="timeout"),
    answer("i", True, -0.1, text=""), answer("j", True, None),
]


@pytest.mark.parametrize("threshold, shown, right", [
    (None, 8, 5),   # a b c d e f g j: the timeout and the empty answer show nothing
    (-1.0, 6, 5),   # a b c d e j
    (-0.35, 4, 4),  # a b c j
    (-0.15, 2, 2),  # a j
    (0.0, 1, 1),    # only j, which has no log-probs
])
def test_show_point_matches_a_hand_count(threshold, shown, right):
    p = sweep.show_point(SHOW_ROWS, threshold)
    assert (p["shown"], p["right"], p["n"]) == (shown, right, 10)
    assert p["coverage"] == pytest.approx(shown / 10)
    assert p["precision"] == pytest.approx(right / shown)


def test_exact_match_decides_where_there_are_no_tests():
    rows = [{"task": "t", "status": "ok", "answer": "x", "exact_match": 1.0,
             "mean_logprob": -0.1},
            {"task": "u", "status": "ok", "answer": "y", "exact_match": 0.0,
             "mean_logprob": -0.1}]
    assert sweep.show_point(rows, None)["precision"] == 0.5


def test_recommended_show_threshold_is_the_most_coverage_that_beats_the_margin():
    points = [sweep.show_point(SHOW_ROWS, t) for t in (None, -1.5, -1.0, -0.35, -0.15)]
    # precision: off 5/8 = .625; −1.5: 5/7 = .714; −1.0: 5/6 = .833; −0.35: 1.0; −0.15: 1.0
    assert sweep.recommend_show(points, margin=0.05, min_shown=1) == 1
    assert sweep.recommend_show(points, margin=0.1, min_shown=1) == 2
    assert sweep.recommend_show(points, margin=0.3, min_shown=1) == 3
    assert sweep.recommend_show(points, margin=0.3, min_shown=5) is None  # too few shown
    assert sweep.recommend_show(points, margin=0.5, min_shown=1) is None  # unreachable


def test_show_sweep_starts_unfiltered_and_rises():
    result = sweep.show_sweep(SHOW_ROWS, points=3, margin=0.1, min_shown=2)
    thresholds = [p["threshold"] for p in result["points"]]
    assert thresholds[0] is None and thresholds[1:] == sorted(thresholds[1:])
    coverage = [p["coverage"] for p in result["points"]]
    assert coverage == sorted(coverage, reverse=True)
    rec = result["points"][result["recommended"]]
    assert rec["precision"] >= result["points"][0]["precision"] + 0.1


def test_show_table_marks_the_recommended_threshold():
    from covey_eval.render import show_table

    result = {"sweep": {"show": sweep.show_sweep(SHOW_ROWS, points=3, margin=0.1,
                                                 min_shown=2)}}
    table = show_table(result)
    assert table.row_count == len(result["sweep"]["show"]["points"])
    cells = list(table.columns[0].cells)
    assert cells[0] == "off" and sum(c.startswith("★") for c in cells) == 1


def test_the_show_threshold_from_the_users_own_accepts_and_rejects(covey_home):
    """``--from-usage``: the editor's completions with an outcome; kept (accepted, partial,
    typed, and not removed by the first retention check) is right. Sure ones kept, unsure
    ones not: raising the threshold above the unsure ones is recommended."""
    import json
    import time

    from helpers.calls import make_call

    from covey_eval.cli import eval_group
    from covey_usage import open_usage_log

    log = open_usage_log(covey_home / "usage.db", meter=False, settle_s=0)
    history = [(-0.1, "accepted", None), (-0.2, "partial", 1), (-0.3, "typed", None),
               (-0.4, "accepted", 0),  # removed within 30 s: not kept
               (-1.5, "ignored", None), (-1.8, "rejected", None), (-2.0, "ignored", None),
               (-2.2, "ignored", None)]
    for mean, outcome, retained in history:
        call = make_call(client="editor", mean_logprob=mean, started_at=time.time() - 60)
        log.record(call)
        log.mark_outcome(call.id, {"shown_at": time.time(), "outcome": outcome,
                                   "retained_30s": retained})
    log.record(make_call(client="eval", mean_logprob=-3.0))  # not the user's: left out
    log.close()
    result = CliRunner().invoke(eval_group, ["sweep", "--from-usage", "--points", "3",
                                             "--margin", "0.5", "--min-shown", "2", "--json"])
    assert result.exit_code == 0, result.output
    show = json.loads(result.output)
    off = show["points"][0]
    assert (off["threshold"], off["shown"], off["right"]) == (None, 8, 3)
    best = show["points"][show["recommended"]]
    assert best["threshold"] > -0.4 and best["precision"] == 1.0
    table = CliRunner().invoke(eval_group, ["sweep", "--from-usage", "--min-shown", "2"])
    assert "kept" in table.output and "never tell whether a lower one" in table.output


def test_from_usage_with_no_history_says_so(covey_home):
    from covey_eval.cli import eval_group

    result = CliRunner().invoke(eval_group, ["sweep", "--from-usage"])
    assert result.exit_code == 0 and "has an outcome yet" in result.output
