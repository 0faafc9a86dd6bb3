"""The usage log behind the real engine client and a real vLLM: every call becomes one
row with the engine's token counts, measured CPU time and cost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlite_utils

from covey_specialists.client import EngineClient
from covey_specialists.table import load_table
from covey_specialists.tasks.doc import doc_prompt
from covey_usage import open_usage_log
from covey_usage.energy import Meter, ServedTokens

pytestmark = pytest.mark.engine


async def test_concurrent_engine_calls_are_logged_and_costed(engine, tmp_path: Path):
    path = tmp_path / "usage.db"
    meter = Meter.for_host(interval_s=0.05)
    log = open_usage_log(path, meter=meter, settle_s=0.5)
    spec = load_table().for_task("doc")
    client = EngineClient(engine.url, engine.api_key, sink=log, client_name="eval")
    code = "def add(a, b):\n    return a + b\n"
    try:
        results = await asyncio.gather(*[
            client.complete(spec, doc_prompt(code, "python", 2000), max_tokens=16)
            for _ in range(3)])
    finally:
        await client.aclose()
        log.close()
    assert all(r.ok for r in results), [r.call.error for r in results]
    db = sqlite_utils.Database(path)
    rows = list(db.query("SELECT * FROM calls"))
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "ok" and row["client"] == "eval"
        assert row["prompt_tokens"] > 10 and 0 < row["completion_tokens"] <= 16
        assert row["engine_seconds"] > 0 and row["cpu_seconds"] > 0
        assert row["local_cost_usd"] > 0 and row["llm_cost_usd"] > 0
        assert row["prompt"] is None and len(row["prompt_sha256"]) == 64
    # the three overlapping calls share the engine's time: no more than the wall time used
    start = min(r["started_at"] for r in rows)
    end = max(r["started_at"] + r["latency_ms"] / 1000 for r in rows)
    assert sum(r["engine_seconds"] for r in rows) == pytest.approx(end - start, rel=1e-6)


async def test_the_engine_counts_served_tokens_for_every_caller(engine):
    """vLLM's own counters, read with the key, grow by exactly a call's tokens: what lets a
    process see the calls other processes send the same engine."""
    counter = ServedTokens(engine.url, engine.api_key)
    spec = load_table().for_task("doc")
    before = counter.read()
    async with EngineClient(engine.url, engine.api_key) as client:
        result = await client.complete(spec, doc_prompt("def f(x):\n    return x\n",
                                                        "python", 2000), max_tokens=8)
    assert result.ok, result.call.error
    call = result.call
    assert counter.read() - before == call.prompt_tokens + call.completion_tokens
    assert ServedTokens(engine.url, "not-the-key").read() is None
