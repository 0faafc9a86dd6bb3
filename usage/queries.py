"""Reading the usage log: opening it for queries, filters, summaries, pruning.

Summaries are computed by pure functions over rows, so they are testable without SQL.
Definitions (also in docs/usage-log.md):

- latency and ttft percentiles are over calls with status ``ok`` (linear interpolation,
  numpy's default method);
- acceptance rate = accepted ÷ calls the editor reported on;
- LLM-equivalent $ = Σ ``llm_cost_usd`` over calls that were not escalated (an escalated
  attempt is paid for by the baseline call that follows it);
- spent $ = Σ ``local_cost_usd`` + Σ ``llm_cost_usd`` of baseline calls (real API spend);
- saved $ = LLM-equivalent − spent; savings ratio = saved ÷ LLM-equivalent;
  cost ratio = LLM-equivalent ÷ spent ("n times cheaper");
- fully loaded $ = local $ plus the engine's idle time and idle energy spread over the
  day's calls (:func:`covey_usage.sessions.fully_loaded`); the ``_fully`` figures use it;
- $ per accepted suggestion = spent $ ÷ accepted calls;
- unpriced = local calls without a local $ (an unknown device); energy unmeasured = local
  calls without an energy reading (NULL, never 0).

What became of the suggestions (the ``suggestions`` table, joined to each call) counts only
those the editor was given (``shown_at`` set), "shown":

- full / partial acceptance rate = outcome ``accepted`` / ``partial`` ÷ shown;
- chars accepted per shown = Σ ``accepted_chars`` ÷ shown;
- ignored share, rejected share = outcome ``ignored`` / ``rejected`` ÷ shown;
- shown ms p50 = the median time on screen, over those with a ``shown_ms``;
- retention rate at each horizon (30 s, 120 s, 300 s) = the mean of the ``retained_*``
  values that were checked (NULL ones are left out; None when none were);
- every rate is None when nothing was shown.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from covey_usage import schema

GROUPS = ("task", "specialist", "model", "adapter", "day", "client", "source", "device")
STATUSES = ("ok", "cancelled", "error", "timeout", "escalated", "invalid", "withheld")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SUGGESTION_FIELDS = tuple(c for c in schema.SUGGESTION_COLUMNS if c != "call_id")
"""The ``suggestions`` columns each fetched call carries (None without a suggestions row)."""


class UsageDbError(Exception):
    """The usage database cannot be used; the message is one line saying why."""


def open_for_reading(path: Path) -> sqlite_utils.Database | None:
    """The database at ``path`` ready for queries, or None if there is none yet.

    Opens read-only when the schema is current, so a read-only file can still be queried;
    an older schema is migrated first.
    """
    if not path.exists():
        return None
    try:
        db = schema.connect(path, readonly=True)
        if not schema.pending_migrations(db):
            return db
        db.close()
        return _migrated_or_as_is(path)
    except sqlite3.DatabaseError as exc:
        raise UsageDbError(explain(path, exc)) from None


def _migrated_or_as_is(path: Path) -> sqlite_utils.Database:
    """Migrate ``path``; a file that cannot be written is queried as it is (the queries
    cope with the tables and columns an older schema lacks)."""
    try:
        return schema.open_db(path)
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc) and "read-only" not in str(exc):
            raise
        return schema.connect(path, readonly=True)


def open_for_writing(path: Path) -> sqlite_utils.Database:
    try:
        return schema.open_db(path)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise UsageDbError(explain(path, exc)) from None


def explain(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return (f"{path} is not a readable SQLite database ({text}); move it aside and Covey "
                "starts a new log")
    if "locked" in text:
        return f"{path} is locked by another process ({text}); try again in a moment"
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return f"{path} is read-only ({text}); check its permissions"
    if "disk is full" in text or "full" in text:
        return f"the disk holding {path} is full ({text})"
    return f"cannot use the usage log {path}: {text}"


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_since(text: str, now: float | None = None) -> float:
    """A duration ago (``7d``) or an ISO date/time (``2025-06-01``, UTC) → Unix time."""
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (7d, 12h) nor a date "
                         "(2025-06-01 or 2025-06-01T12:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def fetch_calls(db: sqlite_utils.Database | None, *, since: float | None = None,
                task: str | None = None, status: str | None = None,
                client: str | None = None, limit: int | None = None,
                newest_first: bool = False, columns: str = "*") -> list[dict]:
    """Calls oldest first (or newest), each with its suggestion's columns
    (:data:`SUGGESTION_FIELDS`, None without a suggestions row). ``columns`` other than
    ``*`` is selected as given, from ``calls`` joined to ``suggestions``."""
    if db is None:
        return []
    where, params = [], []
    for column, value in (("task", task), ("status", status), ("client", client)):
        if value:
            where.append(f"calls.{column} = ?")
            params.append(value)
    if since is not None:
        where.append("calls.started_at >= ?")
        params.append(since)
    joined = db["suggestions"].exists()  # a file from before m006, opened read-only, lacks it
    sql = f"SELECT {_selected(columns, joined)} FROM calls"
    if joined:
        sql += " LEFT JOIN suggestions ON suggestions.call_id = calls.id"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY calls.started_at " + ("DESC" if newest_first else "ASC")
    if limit:
        sql += f" LIMIT {int(limit)}"
    return list(db.query(sql, params))


def _selected(columns: str, joined: bool) -> str:
    if columns != "*":
        return columns
    suggestion = [f"suggestions.{c}" if joined else f"NULL AS {c}" for c in SUGGESTION_FIELDS]
    return ", ".join(["calls.*", *suggestion])


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) by linear interpolation between closest ranks: numpy's
    default method, computed as numpy computes it (the same float); None for no values."""
    if len(values) == 0:
        return None
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    a, b = float(ordered[low]), float(ordered[min(low + 1, len(ordered) - 1)])
    t = rank - low
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def group_key(row: dict, by: str) -> str:
    if by == "day":
        return (row.get("datetime_utc") or "")[:10]
    return str(row.get(by) or "")


def summarize(rows: list[dict], by: str = "task",
              fully: dict[str, float | None] | None = None) -> list[dict]:
    """One summary per group, sorted by key, then an ``(all)`` row when there are rows.
    ``fully`` maps call ids to their fully loaded local $ (default: the marginal one)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(group_key(row, by), []).append(row)
    out = [_summary(key, groups[key], fully) for key in sorted(groups)]
    if rows and len(groups) > 1:
        out.append(_summary("(all)", rows, fully))
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _summary(key: str, rows: list[dict], fully: dict | None = None) -> dict:
    ok = [r for r in rows if r.get("status") == "ok"]
    rated = [r["accepted"] for r in rows if r.get("accepted") is not None]
    baseline = [r for r in rows if r.get("source") == "baseline"]
    local = sum(r.get("local_cost_usd") or 0.0 for r in rows)
    spent = local + sum(r.get("llm_cost_usd") or 0.0 for r in baseline)
    equivalent = sum(r.get("llm_cost_usd") or 0.0 for r in rows if r.get("status") != "escalated")
    energies = [r["energy_j"] for r in rows if r.get("energy_j") is not None]
    own = [r for r in rows if r.get("source") != "baseline"]
    local_fully = sum((fully or {}).get(r.get("id"), r.get("local_cost_usd")) or 0.0
                      for r in rows)
    spent_fully = local_fully + (spent - local)
    accepted = sum(1 for v in rated if v)
    return {
        "key": key,
        "calls": len(rows),
        "ok": len(ok),
        "cancelled": sum(r.get("status") == "cancelled" for r in rows),
        "failed": sum(r.get("status") in ("error", "timeout", "invalid") for r in rows),
        "escalated": sum(r.get("status") == "escalated" for r in rows),
        "rated": len(rated),
        "accepted": sum(1 for v in rated if v),
        "acceptance_rate": (sum(1 for v in rated if v) / len(rated)) if rated else None,
        "ttft_p50_ms": percentile([r["ttft_ms"] for r in ok if r.get("ttft_ms") is not None], 50),
        "ttft_p95_ms": percentile([r["ttft_ms"] for r in ok if r.get("ttft_ms") is not None], 95),
        "latency_p50_ms": percentile([r["latency_ms"] for r in ok], 50),
        "latency_p95_ms": percentile([r["latency_ms"] for r in ok], 95),
        "prompt_tokens": sum(r.get("prompt_tokens") or 0 for r in rows),
        "completion_tokens": sum(r.get("completion_tokens") or 0 for r in rows),
        "energy_j": sum(energies) if energies else None,
        "local_usd": local,
        "spent_usd": spent,
        "llm_equivalent_usd": equivalent,
        "saved_usd": equivalent - spent,
        "savings_ratio": (equivalent - spent) / equivalent if equivalent > 0 else None,
        "cost_ratio": equivalent / spent if spent > 0 else None,
        "local_fully_usd": local_fully,
        "spent_fully_usd": spent_fully,
        "cost_ratio_fully": _ratio(equivalent, spent_fully),
        "usd_per_accepted": _ratio(spent, accepted) if accepted else None,
        "usd_per_accepted_fully": _ratio(spent_fully, accepted) if accepted else None,
        "unpriced": sum(1 for r in own if r.get("local_cost_usd") is None),
        "energy_unmeasured": sum(1 for r in own if r.get("energy_j") is None),
        **_outcomes(rows),
    }


def _outcomes(rows: list[dict]) -> dict:
    """What became of the suggestions the editor was given (see the module docstring)."""
    shown = [r for r in rows if r.get("shown_at") is not None]
    outcomes = [r.get("outcome") for r in shown]

    def share(count: float) -> float | None:
        return _ratio(count, len(shown))

    return {
        "shown": len(shown),
        "accepted_full": outcomes.count("accepted"),
        "accepted_partial": outcomes.count("partial"),
        "acceptance_full_rate": share(outcomes.count("accepted")),
        "acceptance_partial_rate": share(outcomes.count("partial")),
        "chars_accepted_per_shown": share(sum(r.get("accepted_chars") or 0 for r in shown)),
        "ignored_share": share(outcomes.count("ignored")),
        "rejected_share": share(outcomes.count("rejected")),
        "shown_ms_p50": percentile([r["shown_ms"] for r in shown
                                    if r.get("shown_ms") is not None], 50),
        **{f"{column}_rate": _mean([r.get(column) for r in shown])
           for column in schema.RETENTION_COLUMNS},
    }


def _mean(values: list[float | None]) -> float | None:
    """The mean of the values that are not None (None when none are)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def unpriced_devices(rows: list[dict]) -> list[str]:
    """Devices of local calls that have no local $ (the price table lacks them)."""
    return sorted({r.get("device") or "?" for r in rows if r.get("source") != "baseline"
                   and r.get("local_cost_usd") is None and r.get("device")})


BUCKET_OUTCOMES = ("shown", "acceptance_full_rate", "acceptance_partial_rate",
                   "chars_accepted_per_shown",
                   *(f"{column}_rate" for column in schema.RETENTION_COLUMNS))
"""The suggestion figures each bucket carries beside its cost and latency."""


def buckets(rows: list[dict], size: str = "day") -> list[dict]:
    """Cost, latency and what became of the suggestions per hour or day, oldest first, for
    charts."""
    width = 10 if size == "day" else 13
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault((row.get("datetime_utc") or "")[:width], []).append(row)
    out = []
    for key in sorted(grouped):
        s = _summary(key, grouped[key])
        out.append({"bucket": key, "calls": s["calls"], "spent_usd": s["spent_usd"],
                    "llm_equivalent_usd": s["llm_equivalent_usd"],
                    "latency_p50_ms": s["latency_p50_ms"], "latency_p95_ms": s["latency_p95_ms"],
                    "ttft_p50_ms": s["ttft_p50_ms"],
                    **{name: s[name] for name in BUCKET_OUTCOMES}})
    return out


def prune(db: sqlite_utils.Database, older_than_s: float, *, now: float | None = None,
          dry_run: bool = False) -> int:
    """Delete calls that started more than ``older_than_s`` ago, with their suggestions'
    outcomes; returns how many calls."""
    cutoff = (time.time() if now is None else now) - older_than_s
    count = db.execute("SELECT count(*) FROM calls WHERE started_at < ?", [cutoff]).fetchone()[0]
    if count and not dry_run:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM suggestions WHERE call_id IN "
                       "(SELECT id FROM calls WHERE started_at < ?)", [cutoff])
            db.execute("DELETE FROM calls WHERE started_at < ?", [cutoff])
            db.commit()
        except BaseException:
            db.rollback()
            raise
    return count
