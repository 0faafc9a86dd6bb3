"""The eval's cost figures: $ per correct answer against a hand computation, marginal and
fully loaded side by side, and the chart of $ per correct answer against concurrency."""

from __future__ import annotations

from dataclasses import replace

import pytest

from covey_eval import report
from covey_eval.runner import add_costs
from covey_eval.summary import summarise
from covey_usage.cost import load_prices

RTX = "cuda:NVIDIA GeForce RTX 4090"


def priced():
    shipped = load_prices(user=False)
    devices = dict(shipped.devices)
    devices["RTX 4090"] = replace(devices["RTX 4090"], usd_per_hour=3.6)
    return replace(shipped, devices=devices)


def rows(passes: list[float], local: float, llm: float, system: str = "specialist",
         device: str = RTX) -> list[dict]:
    out = []
    for i, passed in enumerate(passes):
        row = {"system": system, "task": f"t{i}", "status": "ok", "pass@1": passed,
               "call_ids": [f"{system}{i}"]}
        add_costs(row, {f"{system}{i}": {"local": local, "llm": llm, "source": "specialist",
                                         "status": "ok", "device": device, "energy": None}})
        out.append(row)
    return out


def test_dollars_per_correct_answer_match_a_hand_computation():
    # 5 tasks, 2 correct; each call $0.001 locally and $0.004 at the LLM's prices.
    data = rows([1.0, 0.0, 1.0, 0.0, 0.0], local=0.001, llm=0.004)
    # the system answered in 10 s: 10 s at $3.60/h = $0.01 of engine time in all
    info = {"specialist": {"label": "s", "kind": "specialist", "wall_s": 10.0}}
    cost = summarise(data, info, prices=priced())["specialist"]["cost"]
    assert cost["correct"] == 2 and cost["correct_metric"] == "pass@1"
    assert cost["per_correct"] == pytest.approx(0.005 / 2)
    assert cost["fully_per_correct"] == pytest.approx(0.01 / 2)
    assert cost["local_per_1k"] == pytest.approx(1.0)
    assert cost["fully_per_1k"] == pytest.approx(2.0)
    assert cost["ratio"] == pytest.approx(4.0) and cost["ratio_fully"] == pytest.approx(2.0)
    assert cost["energy_unmeasured"] == 5


def test_fully_loaded_never_falls_below_marginal_and_unpriced_stays_unpriced():
    busy = summarise(rows([1.0, 1.0], local=0.02, llm=0.04),
                     {"specialist": {"label": "s", "kind": "specialist", "wall_s": 1.0}},
                     prices=priced())["specialist"]["cost"]
    assert busy["fully_per_1k"] == pytest.approx(busy["local_per_1k"])  # 1 s is only $0.001
    unknown = summarise(rows([1.0], local=None, llm=0.04, device="cuda:NVIDIA B200"),
                        {"specialist": {"label": "s", "kind": "specialist", "wall_s": 1.0}},
                        prices=priced())["specialist"]["cost"]
    assert unknown["unpriced"] == 1
    assert unknown["local_per_1k"] is None and unknown["fully_per_1k"] is None
    assert unknown["per_correct"] is None and unknown["llm_equiv_per_1k"] == pytest.approx(40.0)


def test_no_correct_answer_means_no_cost_per_correct():
    cost = summarise(rows([0.0, 0.0], local=0.001, llm=0.004),
                     {"specialist": {"label": "s", "kind": "specialist", "wall_s": 1.0}},
                     prices=priced())["specialist"]["cost"]
    assert cost["per_correct"] is None and cost["fully_per_correct"] is None


def run(concurrency: int, per_correct: float, fully: float) -> dict:
    return {"run_id": f"r{concurrency}", "meta": {"suite": "s", "concurrency": concurrency},
            "summary": {"specialist": {"cost": {"per_correct": per_correct,
                                                "fully_per_correct": fully}}}}


def test_the_concurrency_chart_plots_each_level_once_latest_wins():
    runs = [run(1, 0.01, 0.5), run(8, 0.002, 0.05), run(1, 0.02, 0.4)]
    assert report.concurrency_points(runs) == {
        "specialist": [(1, 0.02, 0.4), (8, 0.002, 0.05)]}
    svg = report.concurrency_cost_svg(runs)
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 4
    assert "specialist" in svg
    assert "no priced runs" in report.concurrency_cost_svg([])
