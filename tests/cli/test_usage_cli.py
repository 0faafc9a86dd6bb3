"""``covey usage`` with click's runner and a temporary Covey home."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from covey_cli import main
from covey_usage import open_usage_log, schema
from covey_usage.calls import ModelCall, new_call_id
from covey_usage.cli import usage_group

DAY = 86400


def invoke(*args: str):
    return CliRunner().invoke(main, ["usage", *args])


def add_calls(home: Path, specs: list[dict]) -> list[str]:
    log = open_usage_log(home / "usage.db", meter=False, settle_s=0)
    ids = []
    for spec in specs:
        call = ModelCall(id=new_call_id(), task=spec.get("task", "completion"),
                         specialist=spec.get("task", "completion"), model="m", adapter="",
                         base_model="smol", engine_url="http://127.0.0.1:1",
                         client=spec.get("client", "editor"),
                         started_at=time.time() - spec.get("age", 60),
                         prompt_tokens=100, completion_tokens=20, ttft_ms=50.0,
                         latency_ms=spec.get("latency_ms", 300.0),
                         status=spec.get("status", "ok"))
        log.record(call)
        ids.append(call.id)
    log.close()
    return ids


@pytest.fixture
def home_with_calls(covey_home: Path) -> Path:
    add_calls(covey_home, [
        {"task": "completion"}, {"task": "completion", "status": "error"},
        {"task": "doc", "latency_ms": 900.0}, {"task": "refactor", "age": 40 * DAY},
    ])
    return covey_home


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert fragment in result.output, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1, result.output


# ------------------------------------------------------------------ empty and missing


def test_missing_database_gives_an_empty_summary(covey_home: Path):
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "No calls logged yet" in result.output
    assert not (covey_home / "usage.db").exists()  # reading never creates it
    assert json.loads(invoke("--json").output)["groups"] == []
    assert json.loads(invoke("list", "--json").output) == []
    assert json.loads(invoke("export", "--json").output) == []


def test_empty_database_gives_an_empty_summary(covey_home: Path):
    schema.open_db(covey_home / "usage.db").close()
    result = invoke("summary")
    assert result.exit_code == 0 and "No calls logged yet" in result.output


# ------------------------------------------------------------------ commands


def test_summary_table_and_json(home_with_calls: Path):
    result = invoke("summary")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split()[:3] == ["task", "calls", "ok"]
    assert "(all)" in result.output
    data = json.loads(invoke("summary", "--by", "task", "--json").output)
    groups = {g["key"]: g for g in data["groups"]}
    assert groups["completion"]["calls"] == 2 and groups["completion"]["failed"] == 1
    assert groups["(all)"]["calls"] == 4
    assert groups["doc"]["latency_p50_ms"] == 900.0


def test_list_filters(home_with_calls: Path):
    rows = json.loads(invoke("list", "--status", "error", "--json").output)
    assert [r["status"] for r in rows] == ["error"]
    rows = json.loads(invoke("list", "--since", "7d", "--json").output)
    assert {r["task"] for r in rows} == {"completion", "doc"}
    rows = json.loads(invoke("list", "--task", "doc", "--json").output)
    assert len(rows) == 1
    text = invoke("list", "-n", "2").output
    assert len(text.splitlines()) == 2 + 2  # header, rule, two calls


def test_export_csv_and_json(home_with_calls: Path, tmp_path: Path):
    result = invoke("export", "--csv")
    records = list(csv.DictReader(io.StringIO(result.output)))
    assert len(records) == 4 and list(records[0]) == schema.ALL_CALL_COLUMNS
    assert json.loads(invoke("export", "--json").output)[0]["task"] == "refactor"  # oldest
    out = tmp_path / "calls.csv"
    result = invoke("export", "-o", str(out))
    assert result.exit_code == 0 and len(out.read_text().splitlines()) == 5


def test_chart_writes_self_contained_html(home_with_calls: Path, tmp_path: Path):
    import xml.etree.ElementTree as ET

    out = tmp_path / "chart.html"
    result = invoke("chart", "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["buckets"]) == 2  # today and 40 days ago
    page = out.read_text()
    assert page.count("<svg") == 2 and "<script" not in page and "http://" not in page.replace(
        "http://www.w3.org/2000/svg", "")
    for svg in page.split("<svg")[1:]:
        ET.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # well-formed


def test_path_and_prune(home_with_calls: Path):
    assert invoke("path").output.strip() == str(home_with_calls / "usage.db")
    assert json.loads(invoke("path", "--json").output)["calls"] == 4
    dry = json.loads(invoke("prune", "--older-than", "30d", "--dry-run", "--json").output)
    assert dry == {"deleted": 0, "matched": 1, "dry_run": True}
    db = sqlite_utils.Database(home_with_calls / "usage.db")
    db["suggestions"].insert_all({"call_id": r["id"], "outcome": "ignored"}
                                 for r in db.query("SELECT id FROM calls"))
    db.close()
    result = invoke("prune", "--older-than", "30d")
    assert result.exit_code == 0 and "Deleted 1 calls" in result.output
    assert json.loads(invoke("path", "--json").output)["calls"] == 3
    db = sqlite_utils.Database(home_with_calls / "usage.db")
    assert db["suggestions"].count == 3  # the pruned call's outcome went with it
    db.close()


def test_prices_lists_dated_prices(covey_home: Path):
    data = json.loads(invoke("prices", "--json").output)
    assert data["baseline"]["name"] in data["models"]
    assert all(m["as_of"] and m["source"] for m in data["models"].values())
    gpus = data["devices"]
    assert {"RTX 3090", "RTX 4090", "L4", "L40S", "A10", "A100 80GB", "H100", "H200"} <= set(gpus)
    for rate in [*gpus.values(), data["cpu"], data["energy"]]:
        assert rate["as_of"][:2] == "20" and "http" in rate["source"], rate


def test_prices_marks_the_users_overrides(covey_home: Path):
    (covey_home / "prices.toml").write_text('[devices.H200]\ncloud_usd_per_hour = 2.5\n')
    out = invoke("prices").output
    assert f"* overridden in {covey_home / 'prices.toml'}: devices.H200.cloud_usd_per_hour" in out
    assert [line.split()[:2] for line in out.splitlines() if line.startswith("H200")] == [
        ["H200", "*"]]
    assert not [line for line in out.splitlines() if line.startswith("H100 ")
                and " * " in line[:12]]


def test_db_option_reads_another_file(home_with_calls: Path, tmp_path: Path):
    other = tmp_path / "other.db"
    result = CliRunner().invoke(main, ["usage", "--db", str(other), "summary", "--json"])
    assert json.loads(result.output)["groups"] == []


# ------------------------------------------------------------------ user errors and faults


def test_bad_arguments_are_one_line_errors(home_with_calls: Path):
    assert_one_line_error(invoke("summary", "--since", "last tuesday"), "--since")
    assert_one_line_error(invoke("prune", "--older-than", "ages"), "--older-than")
    assert_one_line_error(invoke("list", "--status", "fine"), "--status")


def test_corrupt_database_is_a_one_line_error(covey_home: Path):
    db = covey_home / "usage.db"
    db.write_bytes(b"\x00garbage" * 512)
    for args in (["summary"], ["list"], ["export"], ["prune", "--older-than", "1d"]):
        result = invoke(*args)
        assert_one_line_error(result, "not a readable SQLite database")
    assert db.read_bytes().startswith(b"\x00garbage")  # never deleted


def test_locked_database_is_a_one_line_error_for_prune(home_with_calls: Path, monkeypatch):
    monkeypatch.setattr(schema, "BUSY_TIMEOUT_S", 0.2)
    blocker = sqlite3.connect(home_with_calls / "usage.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        # readers are not blocked by a writer in WAL mode
        assert json.loads(invoke("summary", "--json").output)["groups"]
        assert_one_line_error(invoke("prune", "--older-than", "1d"), "locked")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert json.loads(invoke("path", "--json").output)["calls"] == 4  # nothing lost


def test_read_only_database_can_still_be_read(home_with_calls: Path):
    db = home_with_calls / "usage.db"
    db.chmod(0o444)
    try:
        result = invoke("summary", "--json")
        assert result.exit_code == 0
        assert json.loads(result.output)["groups"]
    finally:
        db.chmod(0o644)


def test_bad_price_file_is_a_one_line_error(covey_home: Path):
    (covey_home / "prices.toml").write_text("[energy]\nusd_per_kwh = 'lots'\n")
    assert_one_line_error(invoke("prices"), "energy.usd_per_kwh")


def test_every_command_has_help_with_an_example():
    for name, command in usage_group.commands.items():
        assert command.help, name
        assert "Example:" in command.help, name
        result = invoke(name, "--help")
        assert result.exit_code == 0 and "--json" in result.output, name
