"""Engine sessions: when the managed engine was up, so that its idle time can be charged.

The engine manager (``covey engine up``/``down``) records each run of the engine in the
usage database's ``engine_sessions`` table, with the host's NVML energy counter at both
ends when there is one. :func:`fully_loaded` spreads each day's uptime cost (the device's
hourly rate over the time the engine was up, plus the energy it drew, idle or not) over
that day's calls: the fully loaded cost beside the marginal one.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from covey_usage import schema
from covey_usage.calls import new_call_id
from covey_usage.cost import Prices

log = logging.getLogger("covey.sessions")


def record_start(path: Path, *, engine_url: str, pid: int, device: str,
                 started_at: float | None = None, energy_j: float | None = None) -> str:
    """Open a session row; returns its id."""
    db = schema.open_db(path)
    try:
        session_id = new_call_id()
        with db.conn:
            db["engine_sessions"].insert({
                "id": session_id, "engine_url": engine_url, "pid": pid, "device": device,
                "started_at": time.time() if started_at is None else started_at,
                "stopped_at": None, "stop_reason": "", "energy_start_j": energy_j,
                "energy_stop_j": None})
        return session_id
    finally:
        db.close()


def record_stop(path: Path, *, pid: int, stopped_at: float | None = None,
                reason: str = "stopped", energy_j: float | None = None) -> int:
    """Close the open session(s) of engine ``pid``; returns how many were closed."""
    if not Path(path).exists():
        return 0
    db = schema.open_db(path)
    try:
        with db.conn:
            cursor = db.execute(
                "UPDATE engine_sessions SET stopped_at = ?, stop_reason = ?, energy_stop_j = ? "
                "WHERE pid = ? AND stopped_at IS NULL",
                [time.time() if stopped_at is None else stopped_at, reason, energy_j, pid])
        return cursor.rowcount
    finally:
        db.close()


def fetch_sessions(db: sqlite_utils.Database | None, since: float | None = None) -> list[dict]:
    if db is None or not db["engine_sessions"].exists():
        return []
    if since is None:
        return list(db.query("SELECT * FROM engine_sessions ORDER BY started_at"))
    return list(db.query("SELECT * FROM engine_sessions WHERE stopped_at IS NULL OR "
                         "stopped_at >= ? ORDER BY started_at", [since]))


def _day_bounds(day: str) -> tuple[float, float]:
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def uptime_cost(prices: Prices, device: str, seconds: float,
                energy_j: float | None = None) -> float | None:
    """What an engine on ``device`` costs for ``seconds`` up, busy or idle: the device's
    hourly rate, plus ``energy_j`` of electricity where it is charged (owned hardware);
    None: the device is unpriced."""
    rate = prices.hourly(device)
    if rate is None:
        return None
    return seconds / 3600 * rate + prices.energy_cost(device, energy_j)


def fully_loaded_total(marginal_usd: float, uptime_usd: float) -> float:
    """The fully loaded cost of calls whose marginal costs add up to ``marginal_usd`` on an
    engine that cost ``uptime_usd`` while it was up for them: its idle time is theirs too,
    so the uptime cost, never less than what the calls themselves cost."""
    return max(marginal_usd, uptime_usd)


def _uptime_cost(session: dict, lo: float, hi: float, prices: Prices,
                 now: float) -> tuple[float | None, float, bool]:
    """(cost of the session's overlap with [lo, hi), seconds of overlap, energy measured)."""
    start = session["started_at"]
    end = session["stopped_at"] if session["stopped_at"] is not None else now
    seconds = max(0.0, min(end, hi) - max(start, lo))
    e0, e1 = session.get("energy_start_j"), session.get("energy_stop_j")
    measured = e0 is not None and e1 is not None and end > start
    energy = (e1 - e0) * seconds / (end - start) if measured else None  # prorated
    cost = uptime_cost(prices, session["device"] or "cpu", seconds, energy)
    return cost, seconds, measured and cost is not None


def fully_loaded(rows: list[dict], sessions: list[dict], prices: Prices,
                 now: float | None = None) -> dict[str, float | None]:
    """{call id: fully loaded $} for ``rows``.

    Per UTC day and engine: the uptime cost of the engine's sessions that day (the
    device's hourly rate × the time it was up, plus its measured energy prorated to the
    day) is compared with the calls' marginal costs; the difference (idle time and idle
    energy) is spread evenly over that day's calls on that engine. Calls of an engine
    with no recorded session that day keep their marginal cost; unpriced calls stay None.
    """
    now = time.time() if now is None else now
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    out: dict[str, float | None] = {}
    for row in rows:
        out[row["id"]] = row.get("local_cost_usd")
        if row.get("source") != "baseline" and row.get("local_cost_usd") is not None:
            groups[((row.get("datetime_utc") or "")[:10], row.get("engine_url") or "")].append(row)
    by_url: dict[str, list[dict]] = defaultdict(list)
    for session in sessions:
        by_url[session["engine_url"] or ""].append(session)
    for (day, url), calls in groups.items():
        if not day or not by_url.get(url):
            continue
        lo, hi = _day_bounds(day)
        uptime = 0.0
        for session in by_url[url]:
            cost, seconds, _ = _uptime_cost(session, lo, hi, prices, now)
            if cost is not None:
                uptime += cost
        marginal = sum(c["local_cost_usd"] for c in calls)
        idle = (fully_loaded_total(marginal, uptime) - marginal) / len(calls)
        for call in calls:
            out[call["id"]] = call["local_cost_usd"] + idle
    return out


def uptime_summary(sessions: list[dict], prices: Prices, since: float | None = None,
                   now: float | None = None) -> dict:
    """Engine uptime (seconds), its cost and whether its energy was measured, since
    ``since`` (default: all recorded)."""
    now = time.time() if now is None else now
    seconds = cost = 0.0
    unpriced = unmeasured = 0
    for session in sessions:
        part, secs, measured = _uptime_cost(session, since or 0.0, now, prices, now)
        seconds += secs
        if part is None:
            unpriced += 1
        else:
            cost += part
        unmeasured += not measured
    return {"sessions": len(sessions), "uptime_s": seconds, "uptime_usd": cost,
            "unpriced_sessions": unpriced, "energy_unmeasured_sessions": unmeasured}
