"""``covey usage summary`` figures on synthetic data, checked against figures computed
independently here (numpy percentiles, plain sums)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from covey_cli import main
from covey_usage import queries, schema

TASKS = ("completion", "doc", "refactor")


def synthetic_rows(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    # six whole UTC days, so that every day's group is full whatever the hour the test runs
    # (a group of a few rows may have no ok call, and numpy has no percentile of nothing)
    now = time.time() // 86400 * 86400
    out = []
    for i in range(n):
        started = now - rng.uniform(0, 6 * 86400)
        source = "baseline" if rng.random() < 0.1 else "specialist"
        status = rng.choice(["ok"] * 7 + ["cancelled", "error", "timeout", "escalated"])
        out.append({
            "id": f"{i:06d}", "datetime_utc": schema.utc_text(started), "started_at": started,
            "task": rng.choice(TASKS), "specialist": "s", "model": "m", "client": "editor",
            "source": source, "status": status, "device": "cpu",
            "prompt_tokens": rng.randint(10, 900), "completion_tokens": rng.randint(0, 200),
            "ttft_ms": rng.uniform(20, 300) if rng.random() < 0.9 else None,
            "latency_ms": rng.uniform(100, 3000),
            "accepted": rng.choice([None, None, 0, 1, 1]),
            "local_cost_usd": 0.0 if source == "baseline" else rng.uniform(1e-6, 1e-4),
            "llm_cost_usd": rng.uniform(1e-4, 5e-3),
            "energy_j": rng.uniform(1, 50),
        })
    return out


def expected(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["status"] == "ok"]
    rated = [r["accepted"] for r in rows if r["accepted"] is not None]
    spent = (sum(r["local_cost_usd"] for r in rows)
             + sum(r["llm_cost_usd"] for r in rows if r["source"] == "baseline"))
    equivalent = sum(r["llm_cost_usd"] for r in rows if r["status"] != "escalated")
    ttft = [r["ttft_ms"] for r in ok if r["ttft_ms"] is not None]
    return {
        "calls": len(rows), "ok": len(ok),
        "acceptance_rate": sum(rated) / len(rated),
        "latency_p50_ms": float(np.percentile([r["latency_ms"] for r in ok], 50)),
        "latency_p95_ms": float(np.percentile([r["latency_ms"] for r in ok], 95)),
        "ttft_p50_ms": float(np.percentile(ttft, 50)),
        "ttft_p95_ms": float(np.percentile(ttft, 95)),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "spent_usd": spent, "llm_equivalent_usd": equivalent,
        "saved_usd": equivalent - spent, "savings_ratio": (equivalent - spent) / equivalent,
        "cost_ratio": equivalent / spent,
        "energy_j": sum(r["energy_j"] for r in rows),
    }


@pytest.fixture
def synthetic(covey_home: Path) -> list[dict]:
    rows = synthetic_rows(600)
    db = schema.open_db(covey_home / "usage.db")
    db["calls"].insert_all(rows)
    db.close()
    return rows


def run_json(*args: str) -> dict:
    result = CliRunner().invoke(main, ["usage", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("by", ["task", "day"])
def test_summary_matches_independent_figures(synthetic: list[dict], by: str):
    out = run_json("summary", "--by", by, "--json")
    groups = {g["key"]: g for g in out["groups"]}
    keyed: dict[str, list[dict]] = {}
    for row in synthetic:
        key = row["task"] if by == "task" else row["datetime_utc"][:10]
        keyed.setdefault(key, []).append(row)
    assert set(groups) == set(keyed) | {"(all)"}
    for key, rows in [*keyed.items(), ("(all)", synthetic)]:
        want = expected(rows)
        for field, value in want.items():
            assert groups[key][field] == pytest.approx(value, rel=1e-9), (key, field)


def test_summary_filters_by_task_and_since(synthetic: list[dict]):
    cutoff = time.time() - 2 * 86400
    out = run_json("summary", "--task", "doc", "--since", "2d", "--json")
    rows = [r for r in synthetic if r["task"] == "doc" and r["started_at"] >= cutoff]
    [group] = out["groups"]
    assert group["calls"] == pytest.approx(len(rows), abs=2)  # the cutoff moved a little
    assert group["key"] == "doc"


def test_percentile_matches_numpy():
    rng = random.Random(3)
    for n in (1, 2, 5, 100, 1001):
        values = [rng.uniform(0, 1000) for _ in range(n)]
        for q in (0, 5, 50, 95, 99, 100):
            assert queries.percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert queries.percentile([], 50) is None


def test_summary_without_ratings_or_costs():
    [group] = queries.summarize([{"task": "doc", "status": "error", "latency_ms": 5.0}])
    assert group["acceptance_rate"] is None and group["latency_p50_ms"] is None
    assert group["savings_ratio"] is None and group["cost_ratio"] is None
    assert group["failed"] == 1
