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

    for args in ([], ["--suite", "humaneval-sl", "--from-run", "last"]):
        out = CliRunner().invoke(main, ["eval", "sweep", *args])
        assert out.exit_code == 1 and "either --suite" in out.output
    out = CliRunner().invoke(main, ["eval", "sweep", "--from-run", "last"])
    assert out.exit_code == 1 and out.output.startswith("Error: no usage database")
