"""``covey/usageSummary``: the usage log summarised per task, for the editor's usage view.

The query runs in a thread (SQLite never runs on the event loop).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from pygls.exceptions import JsonRpcInvalidParams

from covey_server import protocol
from covey_settings import home
from covey_usage import queries


def since_time(since: str | None, now: float | None = None) -> float | None:
    """``today`` (from 00:00 UTC), a duration such as ``7d``, or an ISO date; None: all."""
    now = time.time() if now is None else now
    if not since:
        return None
    if since == "today":
        day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return day.timestamp()
    try:
        return queries.parse_since(since, now)
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


def _row(summary: dict) -> dict:
    return {"task": summary["key"], "calls": summary["calls"],
            "p50LatencyMs": summary["latency_p50_ms"], "p95LatencyMs": summary["latency_p95_ms"],
            "localCostUsd": summary["spent_usd"], "llmCostUsd": summary["llm_equivalent_usd"],
            "savingsRatio": summary["savings_ratio"]}


def usage_summary(since: float | None) -> dict:
    db = queries.open_for_reading(home.usage_db_path())
    try:
        summaries = queries.summarize(queries.fetch_calls(db, since=since), by="task")
    finally:
        if db is not None:
            db.close()
    rows = [_row(s) for s in summaries if s["key"] != "(all)"]
    total = next((s for s in summaries if s["key"] == "(all)"), None)
    if total is None and len(summaries) == 1:
        total = summaries[0]
    return {"rows": rows, "total": {k: v for k, v in _row(total).items() if k != "task"}
            if total else {"calls": 0}}


def register(ls) -> None:
    @ls.feature(protocol.USAGE_SUMMARY)
    async def usage_summary_request(ls, params=None):
        ls.require_session()
        since = params.get("since") if isinstance(params, dict) else getattr(params, "since",
                                                                            None)
        if since is not None and not isinstance(since, str):
            raise JsonRpcInvalidParams(f"since must be a string, got {since!r}")
        try:
            return await asyncio.to_thread(usage_summary, since_time(since))
        except queries.UsageDbError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
