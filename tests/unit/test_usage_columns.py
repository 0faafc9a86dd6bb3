"""The calls table's columns come from ModelCall's fields: one row per field (texts as
their length and hash), the same columns and order as before, and a database an older Covey
made is brought up to them by its migrations; the editor's ``covey/callFinished`` names its
fields by the same names, camelCased."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import sqlite_utils
from helpers.calls import make_call

from covey_server.app import call_payload
from covey_usage import open_usage_log, schema
from covey_usage.calls import FIELD_COLUMNS, TEXT_FIELDS, ModelCall

# What m002 and m004 created, written out once here to hold the schema to its history.
M002 = {
    "id": str, "datetime_utc": str, "started_at": float, "task": str, "specialist": str,
    "model": str, "adapter": str, "base_model": str, "engine_url": str, "device": str,
    "client": str, "language": str, "source": str, "status": str, "error": str,
    "prompt_tokens": int, "completion_tokens": int, "ttft_ms": float, "latency_ms": float,
    "accepted": int, "engine_seconds": float, "cpu_seconds": float, "energy_j": float,
    "local_cost_usd": float, "llm_cost_usd": float, "eval_run_id": str, "mean_logprob": float,
    "min_logprob": float, "prompt": str, "completion": str, "prompt_chars": int,
    "completion_chars": int, "prompt_sha256": str, "completion_sha256": str}
M004 = {"llm_prompt_tokens": int, "llm_completion_tokens": int}
SQL_TYPES = {str: "TEXT", int: "INTEGER", float: "REAL"}


def columns(path: Path) -> list[tuple[str, str]]:
    db = sqlite_utils.Database(path)
    try:
        return [(c.name, c.type) for c in db["calls"].columns]
    finally:
        db.close()


def test_every_field_but_the_texts_is_a_column_of_its_name_and_type():
    names = [f.name for f in fields(ModelCall)]
    assert list(FIELD_COLUMNS) == [n for n in names if n not in TEXT_FIELDS]
    assert schema.CALL_COLUMNS == {**M002, **M004}
    assert schema.ALL_CALL_COLUMNS == [*M002, *M004]
    assert schema.LATER_COLUMNS == ()


def test_a_fresh_database_has_the_columns_in_their_order(tmp_path: Path):
    path = tmp_path / "usage.db"
    schema.open_db(path).close()
    assert columns(path) == [(n, SQL_TYPES[k]) for n, k in {**M002, **M004}.items()]


def test_a_database_from_before_m004_gets_the_new_columns_and_takes_rows(tmp_path: Path):
    path = tmp_path / "usage.db"
    db = sqlite_utils.Database(path)  # as Covey left it after m003
    db["eval_runs"].create(schema.EVAL_RUN_COLUMNS, pk="id")
    db["calls"].create(M002, pk="id", foreign_keys=[("eval_run_id", "eval_runs", "id")])
    db.execute("CREATE TABLE _covey_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    db.execute("INSERT INTO _covey_migrations VALUES ('m001_eval_runs', 'then'), "
               "('m002_calls', 'then'), ('m003_indexes', 'then')")
    db.conn.commit()
    db.close()
    log = open_usage_log(path, store_text=True, meter=False, settle_s=0)
    call = make_call(llm_prompt_tokens=300, llm_completion_tokens=9, mean_logprob=-0.5)
    log.record(call)
    log.close()
    assert columns(path) == [(n, SQL_TYPES[k]) for n, k in {**M002, **M004}.items()]
    db = sqlite_utils.Database(path)
    [row] = list(db.query("SELECT * FROM calls"))
    db.close()
    for name in FIELD_COLUMNS:
        if name not in ("device", "engine_seconds", "cpu_seconds", "energy_j",
                        "local_cost_usd", "llm_cost_usd"):  # filled by the cost stage
            assert row[name] == getattr(call, name), name
    assert (row["prompt"], row["completion"]) == (call.prompt_text, call.completion_text)
    assert row["completion_chars"] == 5 and len(row["prompt_sha256"]) == 64
    assert row["llm_prompt_tokens"] == 300 and row["accepted"] is None


def test_the_editor_is_told_a_calls_fields_camel_cased():
    call = make_call(local_cost_usd=0.001, llm_cost_usd=0.01)
    assert call_payload(call) == {
        "callId": call.id, "task": "completion", "specialist": "completion", "status": "ok",
        "ttftMs": 80.0, "latencyMs": 400.0, "promptTokens": 120, "completionTokens": 30,
        "localCostUsd": 0.001, "llmCostUsd": 0.01, "source": "specialist"}
    protocol = Path(__file__).parents[2] / "editor-ext" / "src" / "protocol.ts"
    block = protocol.read_text().split("interface CallFinished {")[1].split("}")[0]
    assert [line.strip().split("?")[0].split(":")[0] for line in block.strip().splitlines()] \
        == list(call_payload(call))
