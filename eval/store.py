"""Eval runs live in the usage database: one ``eval_runs`` row per run (meta, and the
summary with every task's scores), and the run's model calls in ``calls``.

Writes go through the usage log's writer (:class:`covey_usage.UsageLog`); the run prices
its own calls in process (:class:`covey_usage.writer.PricingSink`); reads open the
database directly.
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


def resolve_run_id(ref: str, path: Path | None = None) -> str:
    """The full id of the run ``ref`` names: its id, a prefix of exactly one run's id (as
    git takes commits; any case), or ``last``, the newest finished run.

    Raises :class:`RunNotFound` with a one-line message when nothing or several match.
    """
    db = _open_runs(path)
    try:
        return _resolve(db, ref)
    finally:
        db.close()


def load_run(ref: str, path: Path | None = None) -> dict:
    """A finished run by id, unique id prefix, or ``last`` (:func:`resolve_run_id`); the
    stored result dict."""
    db = _open_runs(path)
    try:
        run_id = _resolve(db, ref)
        meta, summary, status = db.execute("SELECT meta, summary, status FROM eval_runs "
                                           "WHERE id = ?", [run_id]).fetchone()
    finally:
        db.close()
    if status != "finished" or not summary:
        raise RunNotFound(f"eval run {run_id} did not finish")
    result = json.loads(summary)
    result.setdefault("meta", json.loads(meta or "{}"))
    result["run_id"] = run_id
    return result


def _resolve(db, ref: str) -> str:
    ref = ref.strip()
    if not ref:
        raise RunNotFound("give a run id, a unique prefix of one, or 'last' "
                          "(see `covey eval runs`)")
    if ref == "last":
        rows = db.execute("SELECT id FROM eval_runs WHERE status = 'finished' "
                          "ORDER BY started_at DESC LIMIT 1").fetchall()
    else:  # not LIKE, where "_" and "%" match any character
        rows = db.execute("SELECT id FROM eval_runs WHERE lower(substr(id, 1, ?)) = ? "
                          "ORDER BY started_at DESC", [len(ref), ref.lower()]).fetchall()
    ids = [r[0] for r in rows]
    if not ids:
        what = "no finished eval run yet" if ref == "last" else f"no eval run starts with {ref!r}"
        raise RunNotFound(f"{what} (see `covey eval runs`)")
    if len(ids) > 1:
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        raise RunNotFound(f"{ref!r} is ambiguous: {len(ids)} runs start with it ({shown}); "
                          "give more of the id")
    return ids[0]


def _open_runs(path: Path | None):
    db = _open(path)
    if db is None:
        raise RunNotFound(f"no usage database at {path or db_path()}: no eval runs yet")
    return db


def _open(path: Path | None):
    try:
        return open_for_reading(path or db_path())
    except UsageDbError as exc:
        raise RunNotFound(str(exc)) from None
