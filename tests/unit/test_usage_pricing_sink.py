"""An eval run prices its own calls in its own process (covey_usage.writer.PricingSink):
every call still reaches the usage log, and the costs it gets are the ones the log's writer
gives the same calls' rows."""

from __future__ import annotations

import time
from pathlib import Path

import sqlite_utils
from helpers.calls import make_call

from covey_usage import open_usage_log
from covey_usage.writer import PricingSink

PRICED = ("local_cost_usd", "llm_cost_usd", "engine_seconds", "cpu_seconds", "energy_j",
          "device", "status", "source")


def test_the_run_prices_its_calls_as_the_log_does(tmp_path: Path):
    path = tmp_path / "usage.db"
    log = open_usage_log(path, meter=False, settle_s=30.0)
    sink = PricingSink(log)
    now = time.time()
    # three calls sharing the engine (their costs depend on each other), one long settled
    calls = [make_call(started_at=now, latency_ms=400.0, completion_tokens=30),
             make_call(started_at=now + 0.1, latency_ms=200.0, completion_tokens=5),
             make_call(started_at=now + 0.2, latency_ms=600.0, source="baseline",
                       model="gpt-4o-mini"),
             make_call(started_at=now - 600, latency_ms=300.0)]
    for call in calls:
        sink.record(call)
    assert sink.path == log.path  # the rest is the log's
    priced = sink.priced()
    log.close()
    db = sqlite_utils.Database(path)
    rows = {r["id"]: r for r in db.query("SELECT * FROM calls")}
    db.close()
    assert set(priced) == set(rows) == {c.id for c in calls}
    for call_id, row in rows.items():
        assert {k: getattr(priced[call_id], k) for k in PRICED} == {k: row[k] for k in PRICED}
    first, second = priced[calls[0].id], priced[calls[1].id]
    assert first.engine_seconds < 0.4 and second.engine_seconds < 0.2  # the engine was shared
    assert priced[calls[2].id].local_cost_usd == 0.0 and priced[calls[2].id].device == "api"
