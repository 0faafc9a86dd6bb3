"""Marginal and fully loaded cost: engine sessions in the usage log, the idle time and idle
energy of a day spread over that day's calls, energy that no counter read shown as
unmeasured, and $ per accepted suggestion — all checked against hand computations."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from covey_cli import main
from covey_usage import queries, schema, sessions
from covey_usage.cost import load_prices

URL = "http://127.0.0.1:8751"
DAY = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # midnight UTC
RTX = "cuda:NVIDIA GeForce RTX 4090"


def table():
    """The shipped table with a round $3.60/h RTX 4090 (owned) and $0.36/kWh."""
    shipped = load_prices(user=False)
    devices = dict(shipped.devices)
    devices["RTX 4090"] = replace(devices["RTX 4090"], usd_per_hour=3.6)
    return replace(shipped, devices=devices, usd_per_kwh=0.36)


def row(i: int, at: float, local: float | None, *, energy: float | None = 10.0,
        accepted: int | None = None, source: str = "specialist", llm: float = 0.01,
        url: str = URL, device: str = RTX) -> dict:
    return {"id": f"c{i}", "datetime_utc": schema.utc_text(at), "started_at": at,
            "task": "completion", "specialist": "completion", "model": "completion",
            "client": "editor", "source": source, "status": "ok", "device": device,
            "engine_url": url, "prompt_tokens": 100, "completion_tokens": 20,
            "ttft_ms": 50.0, "latency_ms": 300.0, "accepted": accepted,
            "local_cost_usd": local, "llm_cost_usd": llm, "energy_j": energy}


def session(start: float, stop: float | None, e0: float | None = None,
            e1: float | None = None, url: str = URL, device: str = RTX) -> dict:
    return {"id": f"s{start}", "engine_url": url, "pid": 1, "device": device,
            "started_at": start, "stopped_at": stop, "stop_reason": "stopped",
            "energy_start_j": e0, "energy_stop_j": e1}


def test_idle_time_is_spread_over_the_days_calls():
    # Up 09:00–11:00 (2 h at $3.60/h = $7.20) with 72 kJ drawn (0.02 kWh × $0.36 = $0.0072),
    # three calls costing $0.001, $0.002, $0.003 at the margin.
    start = DAY + 9 * 3600
    rows = [row(1, start + 60, 0.001), row(2, start + 120, 0.002), row(3, start + 180, 0.003)]
    out = sessions.fully_loaded(rows, [session(start, start + 7200, 1000.0, 73_000.0)],
                                table(), now=DAY + 86400)
    uptime = 7.2 + 0.0072
    idle_each = (uptime - 0.006) / 3
    assert out == pytest.approx({"c1": 0.001 + idle_each, "c2": 0.002 + idle_each,
                                 "c3": 0.003 + idle_each})
    assert sum(out.values()) == pytest.approx(uptime)  # the day's uptime, all of it


def test_a_session_over_midnight_is_split_between_the_days():
    # Up 23:00 to 01:00: one hour each day; one call each day.
    start = DAY + 23 * 3600
    rows = [row(1, start + 60, 0.0), row(2, start + 3 * 3600 - 60, 0.0)]
    out = sessions.fully_loaded(rows, [session(start, start + 7200)], table(), now=DAY + 3 * 86400)
    assert out == pytest.approx({"c1": 3.6, "c2": 3.6})


def test_calls_without_a_recorded_session_or_price_keep_their_marginal_cost():
    rows = [row(1, DAY + 60, 0.004, url="http://127.0.0.1:9999"), row(2, DAY + 90, None),
            row(3, DAY + 95, 0.0, source="baseline", llm=0.02)]
    out = sessions.fully_loaded(rows, [session(DAY, DAY + 3600)], table(), now=DAY + 86400)
    assert out == {"c1": 0.004, "c2": None, "c3": 0.0}


def test_a_running_session_counts_up_to_now():
    out = sessions.fully_loaded([row(1, DAY + 60, 0.0)], [session(DAY, None)], table(),
                                now=DAY + 1800)
    assert out == pytest.approx({"c1": 1.8})


def test_unpriced_sessions_are_counted_not_charged():
    summary = sessions.uptime_summary(
        [session(DAY, DAY + 3600, device="cuda:NVIDIA B200"), session(DAY, DAY + 3600)],
        table(), now=DAY + 86400)
    assert summary["uptime_s"] == 7200
    assert summary["uptime_usd"] == pytest.approx(3.6)
    assert summary["unpriced_sessions"] == 1
    assert summary["energy_unmeasured_sessions"] == 2


def test_sessions_are_recorded_and_closed_in_the_usage_db(tmp_path: Path):
    db_path = tmp_path / "usage.db"
    sessions.record_start(db_path, engine_url=URL, pid=4242, device="cpu", started_at=100.0)
    assert sessions.record_stop(db_path, pid=4242, stopped_at=160.0, reason="exited") == 1
    assert sessions.record_stop(db_path, pid=4242, stopped_at=200.0) == 0  # already closed
    db = schema.open_db(db_path)
    [got] = sessions.fetch_sessions(db)
    assert (got["started_at"], got["stopped_at"], got["stop_reason"]) == (100.0, 160.0, "exited")
    assert got["energy_start_j"] is None and got["energy_stop_j"] is None  # no counter


def test_summary_shows_unmeasured_energy_fully_loaded_cost_and_cost_per_accepted(
        covey_home: Path):
    now = datetime.now(UTC).timestamp()
    start = now - 1800
    rows = [row(1, start + 10, 0.001, energy=None, accepted=1),
            row(2, start + 20, 0.003, energy=None, accepted=0),
            row(3, start + 30, 0.002, energy=None, accepted=1),
            row(4, start + 40, 0.0, source="baseline", llm=0.05, device="api", url="x",
                energy=None)]
    db = schema.open_db(covey_home / "usage.db")
    db["calls"].insert_all(rows)
    db["engine_sessions"].insert(session(start, start + 1000))
    db.close()
    (covey_home / "prices.toml").write_text(
        '[devices."RTX 4090"]\nusd_per_hour = 3.6\n[energy]\nusd_per_kwh = 0.36\n')
    result = CliRunner().invoke(main, ["usage", "summary", "--json"])
    assert result.exit_code == 0, result.output
    [group] = json.loads(result.output)["groups"]
    spent = 0.006 + 0.05
    # 1,000 s at $3.60/h = $1.00 of uptime over the three local calls
    fully = 1.0 + 0.05
    assert group["energy_j"] is None and group["energy_unmeasured"] == 3
    assert group["spent_usd"] == pytest.approx(spent)
    assert group["spent_fully_usd"] == pytest.approx(fully)
    assert group["usd_per_accepted"] == pytest.approx(spent / 2)
    assert group["usd_per_accepted_fully"] == pytest.approx(fully / 2)
    assert group["cost_ratio_fully"] == pytest.approx(0.08 / fully)
    text = CliRunner().invoke(main, ["usage", "summary"]).output
    assert "unmeasured" in text and "0 J" not in text


def test_energy_counts_only_what_was_measured():
    rows = [row(1, DAY, 0.001, energy=12.0), row(2, DAY + 1, 0.001, energy=None)]
    [group] = queries.summarize(rows)
    assert group["energy_j"] == 12.0 and group["energy_unmeasured"] == 1
    [none] = queries.summarize(rows[1:])
    assert none["energy_j"] is None
