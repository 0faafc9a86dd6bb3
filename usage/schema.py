"""The usage database: opening it (WAL, busy timeout) and its named, ordered migrations.

Migrations are sqlite-utils' own (:class:`sqlite_utils.Migrations`), recorded in
``_covey_migrations`` and applied when the database opens. sqlite-utils reads what is
pending before it takes the write lock, so two processes opening a fresh file at once
would both try the first migration; Covey therefore runs the whole ``apply`` inside one
``BEGIN IMMEDIATE`` transaction (sqlite-utils nests its own steps as savepoints), so each
migration is applied exactly once. The tables are plain SQLite tables that
the sqlite-utils CLI and Datasette open as they are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from covey_usage.calls import FIELD_COLUMNS, TEXT_FIELDS

BUSY_TIMEOUT_S = 5.0
MIGRATIONS_TABLE = "_covey_migrations"

ROW_COLUMNS: dict[str, type] = {"datetime_utc": str, "accepted": int}
"""A call's columns beside its fields: its start as ISO 8601 text, and whether the user kept
the suggestion (the editor says so later)."""
TEXT_COLUMNS: dict[str, type] = {
    column + suffix: kind for suffix, kind in (("", str), ("_chars", int), ("_sha256", str))
    for column in TEXT_FIELDS.values()}
"""Each text field as its text (NULL unless the user opts in), its length and its sha256."""
CALL_COLUMNS: dict[str, type] = {**FIELD_COLUMNS, **ROW_COLUMNS, **TEXT_COLUMNS}
"""Every column of ``calls``, name → type."""

M002_COLUMNS = (
    "id", "datetime_utc", "started_at", "task", "specialist", "model", "adapter",
    "base_model", "engine_url", "device", "client", "language", "source", "status", "error",
    "prompt_tokens", "completion_tokens", "ttft_ms", "latency_ms", "accepted",
    "engine_seconds", "cpu_seconds", "energy_j", "local_cost_usd", "llm_cost_usd",
    "eval_run_id", "mean_logprob", "min_logprob", "prompt", "completion", "prompt_chars",
    "completion_chars", "prompt_sha256", "completion_sha256")
"""The columns m002 created, in its order. A migration that ran keeps its meaning, so this
is history, not a list to extend: a column added later gets a migration of its own."""
M004_COLUMNS = ("llm_prompt_tokens", "llm_completion_tokens")
"""Added by m004: the tokens the baseline LLM would be sent and would write (estimates)."""
LATER_COLUMNS = tuple(c for c in CALL_COLUMNS if c not in M002_COLUMNS + M004_COLUMNS)
"""Columns that came after m005, each added by its own migration ``m_calls_<column>`` (none
yet): adding a field to :class:`~covey_usage.calls.ModelCall` is the whole change."""

EVAL_RUN_COLUMNS: dict[str, type] = {
    "id": str,
    "datetime_utc": str,
    "started_at": float,
    "finished_at": float,
    "name": str,
    "status": str,
    "meta": str,
    "summary": str,
}


ENGINE_SESSION_COLUMNS: dict[str, type] = {
    "id": str,
    "engine_url": str,
    "pid": int,
    "device": str,
    "started_at": float,
    "stopped_at": float,
    "stop_reason": str,
    "energy_start_j": float,
    "energy_stop_j": float,
}
"""One row per run of the managed engine: when it was up, on what, and the host's energy
counter (NVML) at its start and stop; ``stopped_at`` is NULL while it runs."""


SUGGESTION_COLUMNS: dict[str, type] = {
    "call_id": str,
    "shown_at": float,
    "outcome": str,
    "detail": str,
    "shown_ms": float,
    "accepted_chars": int,
    "accepted_lines": int,
    "typed_chars": int,
    "retained_30s": int,
    "retained_120s": int,
    "retained_300s": int,
}
"""What became of a suggestion the editor was given, one row per completion call, written
as it is learned (``covey_server.feedback``): ``outcome`` accepted, partial, typed,
rejected or ignored (``detail``: superseded, typed-over, closed); how long it was on
screen; how much of it went in by an accept and how much the user typed; and whether the
accepted text was still there at each horizon (NULL: not checked)."""
RETENTION_COLUMNS = {"retained_30s": 30.0, "retained_120s": 120.0, "retained_300s": 300.0}
"""Each retention column and its horizon in seconds after the accept (Copilot checks at 15,
30, 120, 300 and 600 s)."""


ALL_CALL_COLUMNS = [*M002_COLUMNS, *M004_COLUMNS, *LATER_COLUMNS]
"""The columns of ``calls`` in its order (a fresh database's, and an upgraded one's)."""


def _m001_eval_runs(db: sqlite_utils.Database) -> None:
    db["eval_runs"].create(EVAL_RUN_COLUMNS, pk="id")


def _m002_calls(db: sqlite_utils.Database) -> None:
    db["calls"].create({name: CALL_COLUMNS[name] for name in M002_COLUMNS}, pk="id",
                       foreign_keys=[("eval_run_id", "eval_runs", "id")])


def _m003_indexes(db: sqlite_utils.Database) -> None:
    db["calls"].create_index(["started_at"], if_not_exists=True)
    db["calls"].create_index(["task", "started_at"], if_not_exists=True)
    db["calls"].create_index(["eval_run_id"], if_not_exists=True)


def _add_call_columns(*names: str) -> Callable[[sqlite_utils.Database], None]:
    def add(db: sqlite_utils.Database) -> None:
        for name in names:
            if name not in db["calls"].columns_dict:
                db["calls"].add_column(name, CALL_COLUMNS[name])
    return add


def _m005_engine_sessions(db: sqlite_utils.Database) -> None:
    db["engine_sessions"].create(ENGINE_SESSION_COLUMNS, pk="id", if_not_exists=True)
    db["engine_sessions"].create_index(["started_at"], if_not_exists=True)


def _m006_suggestions(db: sqlite_utils.Database) -> None:
    db["suggestions"].create(SUGGESTION_COLUMNS, pk="call_id", if_not_exists=True)


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("m001_eval_runs", _m001_eval_runs),
    ("m002_calls", _m002_calls),
    ("m003_indexes", _m003_indexes),
    ("m004_llm_tokens", _add_call_columns(*M004_COLUMNS)),
    ("m005_engine_sessions", _m005_engine_sessions),
    ("m006_suggestions", _m006_suggestions),
    *[(f"m_calls_{name}", _add_call_columns(name)) for name in LATER_COLUMNS],
]

MIGRATION_SET = "covey"
_migrations = sqlite_utils.Migrations(MIGRATION_SET)
_migrations.migrations_table = MIGRATIONS_TABLE
for _name, _step in MIGRATIONS:
    _migrations(name=_name)(_step)


def utc_text(t: float) -> str:
    """Unix time as ISO 8601 UTC text without offset, like simonw/llm's datetime_utc."""
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def connect(path: Path, *, readonly: bool = False,
            busy_timeout_s: float | None = None) -> sqlite_utils.Database:
    """Open ``path`` (WAL, busy timeout) without migrating it."""
    busy_timeout_s = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
    if readonly:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                               timeout=busy_timeout_s, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    try:
        if not readonly and db.journal_mode != "wal":
            db.enable_wal()
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: commits survive a crash
    except Exception:
        conn.close()
        raise
    return db


def _legacy(db: sqlite_utils.Database) -> bool:
    """A database from before sqlite-utils' migrations: ``_covey_migrations(name, applied_at)``."""
    table = db[MIGRATIONS_TABLE]
    return table.exists() and "migration_set" not in table.columns_dict


def applied_migrations(db: sqlite_utils.Database) -> set[str]:
    if _legacy(db):
        return {row[0] for row in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
    return {m.name for m in _migrations.applied(db)}


def pending_migrations(db: sqlite_utils.Database) -> list[str]:
    applied = applied_migrations(db)
    return [name for name, _ in MIGRATIONS if name not in applied]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations this database lacks; returns their names (idempotent)."""
    if not pending_migrations(db):
        return []
    db.execute("BEGIN IMMEDIATE")  # one migrator at a time across processes
    try:
        _upgrade_legacy_record(db)
        before = applied_migrations(db)
        _migrations.apply(db)
        db.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise
    return [name for name, _ in MIGRATIONS if name not in before]


def _upgrade_legacy_record(db: sqlite_utils.Database) -> None:
    """Carry the names an older Covey recorded over into sqlite-utils' table."""
    if not _legacy(db):
        return
    rows = db.execute(f"SELECT name, applied_at FROM {MIGRATIONS_TABLE}").fetchall()
    db[MIGRATIONS_TABLE].drop()
    _migrations.ensure_migrations_table(db)
    db[MIGRATIONS_TABLE].insert_all(
        {"migration_set": MIGRATION_SET, "name": name, "applied_at": at} for name, at in rows)


def open_db(path: Path, *, busy_timeout_s: float | None = None) -> sqlite_utils.Database:
    """Open ``path`` for writing, creating and migrating it as needed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = connect(path, busy_timeout_s=busy_timeout_s)
    try:
        migrate(db)
    except Exception:
        db.close()
        raise
    return db
