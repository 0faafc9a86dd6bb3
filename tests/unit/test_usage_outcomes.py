"""What became of the suggestions, in ``covey usage``: the ``suggestions`` table joined to
each call, the summary's acceptance, characters, ignored and retention figures per adapter,
the summary table's columns for them, and the chart of them over time."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from helpers.calls import make_call

from covey_cli import main
from covey_usage import chart, open_usage_log, queries, schema

DAY_START = datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp()
NEXT_DAY = DAY_START + 86400

# adapter, seconds after DAY_START, what the editor reported (None: no suggestions row)
V1_CALLS = [
    ("completion-v1", 0, {"shown_at": 1.0, "outcome": "accepted", "accepted_chars": 10,
                          "accepted_lines": 1, "shown_ms": 400.0, "retained_30s": 1,
                          "retained_120s": 1, "retained_300s": 0}),
    ("completion-v1", 1, {"shown_at": 2.0, "outcome": "partial", "accepted_chars": 4,
                          "shown_ms": 200.0, "retained_30s": 0}),
    ("completion-v1", 2, {"shown_at": 3.0, "outcome": "ignored", "detail": "superseded",
                          "shown_ms": 100.0}),
    ("completion-v1", 3, {"shown_at": 4.0, "outcome": "ignored", "detail": "typed-over",
                          "shown_ms": 900.0}),
    ("completion-v1", 4, None),  # an eval call: never shown
    ("completion-v1", 5, {"outcome": "rejected"}),  # no shown_at: not counted as shown
]
V2_CALLS = [
    ("completion-v2", NEXT_DAY - DAY_START, {"shown_at": 5.0, "outcome": "accepted",
                                             "accepted_chars": 20, "shown_ms": 50.0,
                                             "retained_30s": 1}),
    ("completion-v2", NEXT_DAY - DAY_START + 1, {"shown_at": 6.0, "outcome": "rejected",
                                                 "shown_ms": 150.0}),
]

V1_FIGURES = {
    "calls": 6, "shown": 4, "accepted_full": 1, "accepted_partial": 1,
    "acceptance_full_rate": 0.25, "acceptance_partial_rate": 0.25,
    "chars_accepted_per_shown": 3.5, "ignored_share": 0.5, "rejected_share": 0.0,
    "shown_ms_p50": 300.0, "retained_30s_rate": 0.5, "retained_120s_rate": 1.0,
    "retained_300s_rate": 0.0,
}
V2_FIGURES = {
    "calls": 2, "shown": 2, "accepted_full": 1, "accepted_partial": 0,
    "acceptance_full_rate": 0.5, "acceptance_partial_rate": 0.0,
    "chars_accepted_per_shown": 10.0, "ignored_share": 0.0, "rejected_share": 0.5,
    "shown_ms_p50": 100.0, "retained_30s_rate": 1.0, "retained_120s_rate": None,
    "retained_300s_rate": None,
}
ALL_FIGURES = {
    "calls": 8, "shown": 6, "accepted_full": 2, "accepted_partial": 1,
    "acceptance_full_rate": 2 / 6, "acceptance_partial_rate": 1 / 6,
    "chars_accepted_per_shown": 34 / 6, "ignored_share": 2 / 6, "rejected_share": 1 / 6,
    "shown_ms_p50": 175.0, "retained_30s_rate": 2 / 3, "retained_120s_rate": 1.0,
    "retained_300s_rate": 0.0,
}
NOTHING_SHOWN = {
    "shown": 0, "accepted_full": 0, "accepted_partial": 0, "acceptance_full_rate": None,
    "acceptance_partial_rate": None, "chars_accepted_per_shown": None, "ignored_share": None,
    "rejected_share": None, "shown_ms_p50": None, "retained_30s_rate": None,
    "retained_120s_rate": None, "retained_300s_rate": None,
}
OUTCOME_HEADERS = {"shown", "kept full/part", "chars/shown", "ignored", "retained 30s/2m/5m"}
ORPHAN_ID = "0" * 22  # a suggestions row whose call was never written


def write_calls(path: Path, specs: list[tuple[str, float, dict | None]]) -> dict[str, str]:
    """Record one call per spec and what became of it; returns {call id: adapter}."""
    log = open_usage_log(path, meter=False, settle_s=0)
    ids = {}
    for adapter, offset, outcome in specs:
        call = make_call(adapter=adapter, started_at=DAY_START + offset)
        if outcome is not None:
            log.mark_outcome(call.id, outcome)  # before its call row: the writer allows it
        log.record(call)
        ids[call.id] = adapter
    log.mark_outcome(ORPHAN_ID, {"shown_at": 9.0, "outcome": "accepted", "accepted_chars": 99})
    log.close()
    return ids


def read(path: Path, **filters) -> list[dict]:
    db = queries.open_for_reading(path)
    try:
        return queries.fetch_calls(db, **filters)
    finally:
        db.close()


def figures(summary: dict, like: dict) -> dict:
    return {key: summary[key] for key in like}


def invoke(*args: str):
    result = CliRunner().invoke(main, ["usage", *args])
    assert result.exit_code == 0, result.output
    return result.output


def table_rows(output: str) -> dict[str, dict[str, str]]:
    """The summary table as {group: {header: cell}} (cells are two or more spaces apart)."""
    lines = output.splitlines()
    headers = re.split(r"\s{2,}", lines[0].strip())
    body = [line for line in lines[2:] if line and not line.startswith(("Engine", "Unpriced"))]
    return {cells[0]: dict(zip(headers, cells, strict=True))
            for cells in (re.split(r"\s{2,}", line.strip()) for line in body)}


def drop_m006(path: Path) -> None:
    """Leave the database as a Covey from before m006 left it."""
    db = sqlite_utils.Database(path)
    db["suggestions"].drop()
    db.execute("DELETE FROM _covey_migrations WHERE name = 'm006_suggestions'")
    db.conn.commit()
    db.close()


@pytest.fixture
def usage_db(covey_home: Path) -> Path:
    path = covey_home / "usage.db"
    write_calls(path, V1_CALLS + V2_CALLS)
    return path


@pytest.fixture
def plain_db(covey_home: Path) -> Path:
    """Calls only (eval and CLI calls): no suggestion was ever shown."""
    path = covey_home / "usage.db"
    write_calls(path, [("completion-v1", 0, None), ("completion-v2", 1, None)])
    return path


# ------------------------------------------------------------------ fetch_calls


def test_each_call_carries_its_suggestion_columns(usage_db: Path):
    fetched = read(usage_db)
    assert len(fetched) == 8  # the orphan suggestion has no call to join to
    assert ORPHAN_ID not in {r["id"] for r in fetched}
    for row in fetched:
        assert set(queries.SUGGESTION_FIELDS) <= set(row) and "call_id" not in row
        assert set(schema.ALL_CALL_COLUMNS) <= set(row)
    first, never_shown = fetched[0], fetched[4]
    assert first["adapter"] == "completion-v1" and first["outcome"] == "accepted"
    assert first["accepted_chars"] == 10 and first["retained_300s"] == 0
    assert all(never_shown[c] is None for c in queries.SUGGESTION_FIELDS)


def test_fetch_calls_filters_and_columns_still_work_with_the_join(usage_db: Path):
    assert [r["outcome"] for r in read(usage_db, since=NEXT_DAY)] == ["accepted", "rejected"]
    assert read(usage_db, task="doc") == []
    newest = read(usage_db, limit=1, newest_first=True, columns="calls.adapter, outcome")
    assert newest == [{"adapter": "completion-v2", "outcome": "rejected"}]


# ------------------------------------------------------------------ summaries


def test_summary_by_adapter_gives_each_adapters_outcome_figures(usage_db: Path):
    groups = {g["key"]: g for g in queries.summarize(read(usage_db), by="adapter")}
    assert list(groups) == ["completion-v1", "completion-v2", "(all)"]
    assert figures(groups["completion-v1"], V1_FIGURES) == V1_FIGURES
    assert figures(groups["completion-v2"], V2_FIGURES) == V2_FIGURES
    assert figures(groups["(all)"], ALL_FIGURES) == pytest.approx(ALL_FIGURES)
    assert groups["(all)"]["latency_p50_ms"] == 400.0  # the existing figures are still there


def test_nothing_shown_gives_zero_counts_and_no_rates(plain_db: Path):
    [group] = queries.summarize(read(plain_db), by="task")
    assert figures(group, NOTHING_SHOWN) == NOTHING_SHOWN
    [bare] = queries.summarize([{"task": "doc", "status": "ok", "latency_ms": 5.0}])
    assert figures(bare, NOTHING_SHOWN) == NOTHING_SHOWN  # rows without the columns at all


def test_a_read_only_database_from_before_m006_still_summarises(usage_db: Path):
    drop_m006(usage_db)
    db = schema.connect(usage_db, readonly=True)
    try:
        assert not db["suggestions"].exists()
        fetched = queries.fetch_calls(db)
    finally:
        db.close()
    assert len(fetched) == 8
    assert all(r[c] is None for r in fetched for c in queries.SUGGESTION_FIELDS)
    groups = {g["key"]: g for g in queries.summarize(fetched, by="adapter")}
    assert groups["completion-v1"]["calls"] == 6
    assert figures(groups["(all)"], NOTHING_SHOWN) == NOTHING_SHOWN


def test_a_database_that_cannot_be_migrated_is_read_as_it_is(usage_db: Path, monkeypatch):
    drop_m006(usage_db)

    def read_only(path, **_):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(schema, "open_db", read_only)
    data = json.loads(invoke("summary", "--by", "adapter", "--json"))
    assert [g["calls"] for g in data["groups"]] == [6, 2, 8]
    assert all(g["shown"] == 0 for g in data["groups"])
    assert "kept full/part" not in invoke("summary", "--by", "adapter")


def test_buckets_carry_the_outcome_rates_per_day(usage_db: Path):
    day1, day2 = queries.buckets(read(usage_db), "day")
    assert day1["bucket"] == "2025-06-01" and day2["bucket"] == "2025-06-02"
    for bucket, want in ((day1, V1_FIGURES), (day2, V2_FIGURES)):
        for key in queries.BUCKET_OUTCOMES:
            assert bucket[key] == want[key], (bucket["bucket"], key)


# ------------------------------------------------------------------ the CLI


def test_summary_table_shows_the_outcome_columns(usage_db: Path):
    table = table_rows(invoke("summary", "--by", "adapter"))
    assert OUTCOME_HEADERS <= set(next(iter(table.values())))
    v1, v2 = table["completion-v1"], table["completion-v2"]
    assert (v1["shown"], v1["kept full/part"], v1["chars/shown"], v1["ignored"],
            v1["retained 30s/2m/5m"]) == ("4", "25%/25%", "3.5", "50%", "50%/100%/0%")
    assert (v2["shown"], v2["kept full/part"], v2["chars/shown"], v2["ignored"],
            v2["retained 30s/2m/5m"]) == ("2", "50%/0%", "10.0", "0%", "100%/-/-")
    assert table["(all)"]["shown"] == "6"


def test_summary_table_without_suggestions_is_as_before(plain_db: Path):
    table = table_rows(invoke("summary", "--by", "adapter"))
    headers = list(table["completion-v1"])
    assert headers == ["adapter", "calls", "ok", "accepted", "ttft p50/p95 ms",
                       "latency p50/p95 ms", "tokens in+out", "spent marginal",
                       "fully loaded", "LLM-equivalent", "x cheaper m/f", "$/accepted m/f",
                       "energy"]


def test_summary_json_has_the_outcome_figures(usage_db: Path):
    data = json.loads(invoke("summary", "--by", "adapter", "--json"))
    assert data["by"] == "adapter"
    groups = {g["key"]: g for g in data["groups"]}
    assert figures(groups["completion-v1"], V1_FIGURES) == V1_FIGURES
    assert figures(groups["completion-v2"], V2_FIGURES) == V2_FIGURES


# ------------------------------------------------------------------ the chart


def test_chart_page_charts_what_was_kept_when_suggestions_were_shown(usage_db: Path,
                                                                    tmp_path: Path):
    out = tmp_path / "usage.html"
    invoke("chart", "-o", str(out))
    page = out.read_text()
    assert page.count("<svg") == 3
    assert "Suggestions kept, of those shown" in page
    assert "still there after 30 s" in page and "<script" not in page
    # day 1 kept 25% in full: its point sits a quarter of the way up the 0–100% axis
    top, bottom = chart.PAD, chart.HEIGHT - chart.PAD
    kept_svg = page[page.index("Suggestions kept"):]
    assert f'cy="{bottom - 0.25 * (bottom - top):.1f}"' in kept_svg


def test_chart_page_leaves_the_kept_chart_out_without_suggestions(plain_db: Path,
                                                                  tmp_path: Path):
    out = tmp_path / "usage.html"
    invoke("chart", "-o", str(out))
    page = out.read_text()
    assert page.count("<svg") == 2 and "Suggestions kept" not in page
