"""The usage log writer: rows, privacy, acceptance, eval runs, migrations, and faults
(locked, read-only, full and corrupt databases) that must never reach the caller."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest
import sqlite_utils
from helpers.calls import make_call

from covey_usage import open_usage_log, schema
from covey_usage.calls import CallSink


def rows(path: Path, sql: str = "SELECT * FROM calls ORDER BY started_at") -> list[dict]:
    db = sqlite_utils.Database(path)
    try:
        return list(db.query(sql))
    finally:
        db.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "usage.db"


def test_a_call_becomes_one_costed_row(db_path: Path):
    log = open_usage_log(db_path, meter=False, settle_s=0)
    sink: CallSink = log  # the writer is what EngineClient(sink=...) takes
    call = make_call()
    sink.record(call)
    log.close()
    [row] = rows(db_path)
    assert row["id"] == call.id and row["task"] == "completion" and row["status"] == "ok"
    assert row["prompt_tokens"] == 120 and row["completion_tokens"] == 30
    assert row["latency_ms"] == 400.0 and row["ttft_ms"] == 80.0
    assert row["device"] == "cpu"
    assert row["engine_seconds"] == pytest.approx(0.4)
    assert row["local_cost_usd"] > 0 and row["llm_cost_usd"] > row["local_cost_usd"]
    assert row["datetime_utc"].startswith(time.strftime("%Y-", time.gmtime(call.started_at)))
    assert row["accepted"] is None


def test_text_is_stored_only_when_opted_in(tmp_path: Path):
    for store, path in ((False, tmp_path / "off.db"), (True, tmp_path / "on.db")):
        log = open_usage_log(path, store_text=store, meter=False, settle_s=0)
        log.record(make_call())
        log.close()
        [row] = rows(path)
        assert row["prompt_chars"] == len("def add(a, b):\n    return ")
        assert row["completion_chars"] == 5
        assert len(row["prompt_sha256"]) == 64 and len(row["completion_sha256"]) == 64
        if store:
            assert row["prompt"].startswith("def add") and row["completion"] == "a + b"
        else:
            assert row["prompt"] is None and row["completion"] is None
            raw = path.read_bytes() + (Path(f"{path}-wal").read_bytes()
                                       if Path(f"{path}-wal").exists() else b"")
            assert b"def add(a, b)" not in raw


def test_record_copies_the_call(db_path: Path):
    log = open_usage_log(db_path, meter=False, settle_s=0)
    call = make_call()
    log.record(call)
    call.status = "escalated"  # the caller changing its record later does not race the writer
    log.close()
    assert rows(db_path)[0]["status"] == "ok"


def test_acceptance_before_and_after_the_row_is_written(db_path: Path):
    log = open_usage_log(db_path, meter=False, settle_s=60)  # rows wait in the cost stage
    early, late = make_call(), make_call()
    log.record(early)
    log.mark_accepted(early.id, True)       # still pending in the cost stage
    log.record(late)
    log.flush()
    log.mark_accepted(late.id, False)       # already a row
    log.mark_accepted("no-such-call", True)  # harmless
    log.close()
    accepted = {r["id"]: r["accepted"] for r in rows(db_path)}
    assert accepted == {early.id: 1, late.id: 0}


def test_what_became_of_a_suggestion_is_merged_into_its_row_as_it_is_learned(db_path: Path):
    log = open_usage_log(db_path, meter=False, settle_s=60)
    call = make_call()
    log.record(call)
    log.mark_outcome(call.id, {"shown_at": 1.0})
    log.mark_outcome(call.id, {"outcome": "partial", "accepted_chars": 8, "accepted_lines": 1})
    log.flush()
    log.mark_outcome(call.id, {"retained_30s": 1})
    log.mark_outcome(call.id, {"retained_120s": 0})
    log.close()
    [row] = rows(db_path, "SELECT * FROM suggestions")
    assert row == {**dict.fromkeys(schema.SUGGESTION_COLUMNS), "call_id": call.id,
                   "shown_at": 1.0, "outcome": "partial", "accepted_chars": 8,
                   "accepted_lines": 1, "retained_30s": 1, "retained_120s": 0}


def test_a_database_from_before_m006_keeps_its_rows_and_gains_suggestions(db_path: Path):
    log = open_usage_log(db_path, meter=False, settle_s=0)
    kept = make_call()
    log.record(kept)
    log.close()
    db = sqlite_utils.Database(db_path)  # as the previous Covey left it: no m006
    db["suggestions"].drop()
    db.execute("DELETE FROM _covey_migrations WHERE name = 'm006_suggestions'")
    db.conn.commit()
    db.close()
    log = open_usage_log(db_path, meter=False, settle_s=0)
    log.mark_outcome(kept.id, {"outcome": "accepted"})
    log.close()
    assert [r["id"] for r in rows(db_path)] == [kept.id]
    assert rows(db_path, "SELECT call_id, outcome FROM suggestions") == [
        {"call_id": kept.id, "outcome": "accepted"}]


def test_eval_runs_and_their_calls(db_path: Path):
    import json

    log = open_usage_log(db_path, meter=False, settle_s=0)
    run = log.start_eval_run({"name": "humaneval-singleline", "system": "specialists"})
    log.record(make_call(client="eval", eval_run_id=run))
    log.finish_eval_run(run, {"pass@1": 0.42})
    log.close()
    [run_row] = rows(db_path, "SELECT * FROM eval_runs")
    assert run_row["id"] == run and run_row["status"] == "finished"
    assert run_row["name"] == "humaneval-singleline"
    assert json.loads(run_row["summary"]) == {"pass@1": 0.42}
    assert run_row["finished_at"] >= run_row["started_at"]
    [joined] = rows(db_path, "SELECT e.name FROM calls c JOIN eval_runs e ON e.id = c.eval_run_id")
    assert joined["name"] == "humaneval-singleline"


def test_migrations_are_recorded_and_idempotent(db_path: Path):
    db = schema.open_db(db_path)
    assert schema.pending_migrations(db) == []
    assert schema.migrate(db) == []
    names = [r[0] for r in db.execute("SELECT name FROM _covey_migrations ORDER BY name")]
    assert names == [name for name, _ in schema.MIGRATIONS]
    assert db.journal_mode == "wal"
    db.close()
    # a partly migrated database gets only what it lacks
    db = sqlite_utils.Database(db_path)
    db.execute("DROP INDEX idx_calls_started_at")
    db.execute("DELETE FROM _covey_migrations WHERE name = 'm003_indexes'")
    db.close()
    db = schema.open_db(db_path)
    assert "idx_calls_started_at" in {i.name for i in db["calls"].indexes}
    assert schema.migrate(db) == []
    db.close()


def test_an_older_record_of_migrations_is_carried_over(db_path: Path):
    schema.open_db(db_path).close()
    db = sqlite_utils.Database(db_path)  # what Covey wrote before sqlite-utils' migrations
    db.execute("DROP TABLE _covey_migrations")
    db.execute("CREATE TABLE _covey_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    db.execute("INSERT INTO _covey_migrations VALUES ('m001_eval_runs', 'then'), "
               "('m002_calls', 'then')")
    db.execute("DROP INDEX idx_calls_started_at")
    db.conn.commit()
    db.close()
    db = schema.open_db(db_path)
    assert "idx_calls_started_at" in {i.name for i in db["calls"].indexes}
    rows = db.execute("SELECT migration_set, name, applied_at FROM _covey_migrations "
                      "ORDER BY name").fetchall()
    assert [r[:2] for r in rows] == [("covey", name) for name, _ in schema.MIGRATIONS]
    assert rows[0][2] == "then"
    db.close()


def test_plain_tables_open_with_the_sqlite_utils_cli(db_path: Path):
    import subprocess
    import sys

    log = open_usage_log(db_path, meter=False, settle_s=0)
    log.record(make_call())
    log.close()
    cli = Path(sys.executable).with_name("sqlite-utils")
    out = subprocess.run([str(cli), "tables", str(db_path), "--counts"], capture_output=True,
                         text=True, check=True).stdout
    assert '"table": "calls", "count": 1' in out
    assert '"table": "eval_runs", "count": 0' in out


# ------------------------------------------------------------------ faults


def test_a_locked_database_delays_rows_but_loses_none(db_path: Path, caplog):
    schema.open_db(db_path).close()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    log = open_usage_log(db_path, meter=False, settle_s=0)
    log._busy_timeout_s = 0.1
    log._retry_max_s = 0.2
    with caplog.at_level(logging.ERROR, logger="covey.usage"):
        for _ in range(5):
            log.record(make_call())       # never blocks or raises, though the db is locked
        time.sleep(1.0)
    assert log.stats.failures >= 1 and "locked" in log.stats.last_error
    blocker.execute("ROLLBACK")
    blocker.close()
    log.close()
    assert len(rows(db_path)) == 5
    assert log.stats.dropped == 0


def test_a_read_only_database_is_logged_not_raised(db_path: Path, caplog, monkeypatch):
    log = open_usage_log(db_path, meter=False, settle_s=0)
    log.record(make_call())
    log.close()
    # The process may run as root, where file modes do not stop writes: open the file the
    # way SQLite opens a read-only database instead (mode=ro), which fails the same way.
    real_connect = schema.connect
    monkeypatch.setattr(schema, "connect",
                        lambda path, **kw: real_connect(path, **{**kw, "readonly": True}))
    with caplog.at_level(logging.ERROR, logger="covey.usage"):
        log = open_usage_log(db_path, meter=False, settle_s=0)
        log.record(make_call())
        log.close(timeout=10)
    assert log.stats.dropped == 1
    assert "readonly" in log.stats.last_error
    assert any("usage log" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    assert len(rows(db_path)) == 1  # the committed row is intact


def test_a_full_database_retries_and_recovers(db_path: Path):
    log = open_usage_log(db_path, meter=False, settle_s=0)
    log.record(make_call())
    log.flush()
    log._retry_max_s = 0.2
    db = log._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")     # the file cannot grow: SQLITE_FULL
    for _ in range(300):
        log.record(make_call(prompt_text="x" * 2000))
    deadline = time.time() + 10
    while log.stats.failures == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert "full" in log.stats.last_error
    db.execute("PRAGMA max_page_count = 1073741823")  # space again
    log.close()
    assert len(rows(db_path)) == 301
    assert log.stats.dropped == 0


def test_a_corrupt_database_never_reaches_the_caller(db_path: Path, caplog):
    db_path.write_bytes(b"this is not sqlite at all" * 100)
    with caplog.at_level(logging.ERROR, logger="covey.usage"):
        log = open_usage_log(db_path, meter=False, settle_s=0)
        log.record(make_call())
        log.close(timeout=10)
    assert log.stats.dropped == 1
    assert "not a database" in log.stats.last_error
    assert db_path.read_bytes().startswith(b"this is not sqlite")  # left for the user to inspect


def test_backlog_is_bounded(db_path: Path):
    db_path.write_bytes(b"junk" * 1000)
    log = open_usage_log(db_path, meter=False, settle_s=0)
    log._max_backlog = 10
    for _ in range(25):
        log.record(make_call())
    log.close(timeout=10)
    assert log.stats.dropped == 25  # 15 trimmed, then 10 lost at close: all accounted for


def test_record_after_close_is_ignored(db_path: Path):
    log = open_usage_log(db_path, meter=False, settle_s=0)
    log.close()
    log.record(make_call())  # no exception
    assert not db_path.exists() or rows(db_path) == []
