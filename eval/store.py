"""Eval runs live in the usage database: one ``eval_runs`` row per run (meta, and the
summary with every task's scores), and the run's model calls in ``calls``.

Writes go through the usage log's writer (:class:`covey_usage.UsageLog`), which
also prices the calls; reads open the database directly.
"""

from __future__ import annotations

import json
from pathlib import Path

from covey_settings import home
from covey_usage.queries import UsageDbError, open_for_reading


class RunNotFound(LookupError):
    """No run matches; the message says what was looked for."""


def db_path() -> Path:
    return home.usage_db_path()


def call_costs(path: Path, run_id: str) -> dict[str, dict]:
    """{call_id: {local, llm, source, status, device, energy}} for a run's logged calls
    (flush the usage log first)."""
    db = open_for_reading(path)
    if db is None:
        return {}
    try:
        rows = db.execute("SELECT id, local_cost_usd, llm_cost_usd, source, status, device, "
                          "energy_j FROM calls WHERE eval_run_id = ?", [run_id]).fetchall()
    finally:
        db.close()
    return {r[0]: {"local": r[1], "llm": r[2], "source": r[3], "status": r[4], "device": r[5],
                   "energy": r[6]} for r in rows}


def runs_of_suite(suite: str, path: Path | None = None) -> list[dict]:
    """Every finished run of ``suite``, oldest first, as stored (for charts across runs)."""
    db = _open(path)
    if db is None:
        return []
    try:
        rows = db.execute("SELECT id, meta, summary FROM eval_runs WHERE status = 'finished' "
                          "ORDER BY started_at").fetchall()
    finally:
        db.close()
    out = []
    for run_id, meta, summary in rows:
        try:
            meta, result = json.loads(meta or "{}"), json.loads(summary or "{}")
        except ValueError:
            continue
        if meta.get("suite") == suite and result.get("summary"):
            out.append({"run_id": run_id, "meta": meta, "summary": result["summary"]})
    return out


def list_runs(path: Path | None = None) -> list[dict]:
    db = _open(path)
    if db is None:
        return []
    try:
        rows = db.execute("SELECT id, datetime_utc, name, status FROM eval_runs "
                          "ORDER BY started_at DESC").fetchall()
    finally:
        db.close()
    return [{"id": r[0], "datetime_utc": r[1], "name": r[2], "status": r[3]} for r in rows]


def load_run(ref: str, path: Path | None = None) -> dict:
    """A finished run by id, unique id prefix, or ``last``; the stored result dict."""
    db = _open(path)
    if db is None:
        raise RunNotFound(f"no usage database at {path or db_path()}: no eval runs yet")
    try:
        if ref == "last":
            rows = db.execute("SELECT id, meta, summary, status FROM eval_runs WHERE status = "
                              "'finished' ORDER BY started_at DESC LIMIT 1").fetchall()
        else:
            rows = db.execute("SELECT id, meta, summary, status FROM eval_runs WHERE id LIKE ?",
                              [ref + "%"]).fetchall()
    finally:
        db.close()
    if not rows:
        raise RunNotFound(f"no eval run {ref!r} (see `covey eval runs`)")
    if len(rows) > 1:
        raise RunNotFound(f"{ref!r} matches {len(rows)} runs; give more of the id")
    run_id, meta, summary, status = rows[0]
    if status != "finished" or not summary:
        raise RunNotFound(f"eval run {run_id} did not finish")
    result = json.loads(summary)
    result.setdefault("meta", json.loads(meta or "{}"))
    result["run_id"] = run_id
    return result


def _open(path: Path | None):
    try:
        return open_for_reading(path or db_path())
    except UsageDbError as exc:
        raise RunNotFound(str(exc)) from None
