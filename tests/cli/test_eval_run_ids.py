"""Eval runs are named by a unique id prefix, as git names commits, and listed whole.

`covey eval runs` in an 80-column terminal must show every id in full: it is what
`report` and `compare` take, and a cut id cannot be copied.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from covey_eval import store
from covey_eval.cli import eval_group
from covey_usage import schema

TWINS = ("ffff00000000aaaa000001", "ffff00000000aaaa000002")
"""Two runs whose ids share the prefix ``ffff00000000aaaa0000``."""


def covey_eval(*args: str):
    return CliRunner().invoke(eval_group, list(args), env={"COLUMNS": "80"},
                              catch_exceptions=False)


@pytest.fixture
def runs(covey_home) -> list[str]:
    """One real (small) run, and two copies of it under ids sharing a prefix."""
    result = covey_eval("run", "--suite", "stdlib-doc", "--system", "oracle", "--system",
                        "empty", "--limit", "3", "--json")
    assert result.exit_code == 0, result.output
    real = json.loads(result.output)["run_id"]
    db = schema.open_db(store.db_path())
    try:
        row = dict(db["eval_runs"].get(real))
        for i, twin in enumerate(TWINS):
            db["eval_runs"].insert({**row, "id": twin, "started_at": row["started_at"] + i + 1})
    finally:
        db.close()
    return [real, *TWINS]


def test_runs_shows_every_id_whole_in_80_columns(runs):
    result = covey_eval("runs")
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    for run_id in runs:
        assert run_id in result.output


@pytest.mark.parametrize("ref", ["whole", "prefix", "PREFIX", "last"])
def test_report_takes_an_id_a_unique_prefix_or_last(runs, tmp_path, ref):
    real = runs[0]
    given = {"whole": real, "prefix": real[:6], "PREFIX": real[:6].upper(),
             "last": "last"}[ref]
    out = tmp_path / "report.html"
    result = covey_eval("report", given, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text()


def test_compare_takes_unique_prefixes(runs):
    real = runs[0]
    result = covey_eval("compare", real[:8].upper(), TWINS[1], "--json")
    assert result.exit_code == 0, result.output
    assert {r["system"] for r in json.loads(result.output)["rows"]} == {"oracle", "empty"}
    table = covey_eval("compare", real[:5], "last")
    assert table.exit_code == 0 and "3 shared tasks" in table.output


@pytest.mark.parametrize("command", [["report", "{ref}", "-o", "x.html"],
                                     ["compare", "{ref}", "last"],
                                     ["compare", "last", "{ref}"]])
def test_an_ambiguous_prefix_is_one_clear_line(runs, command):
    ref = TWINS[0][:20]
    result = covey_eval(*[part.format(ref=ref) for part in command])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [f"Error: '{ref}' is ambiguous: 2 runs start with it "
                     f"({TWINS[1]}, {TWINS[0]}); give more of the id"]


@pytest.mark.parametrize("ref", ["0000", "_", "%", "ffff%"])
def test_an_unknown_prefix_is_one_clear_line(runs, ref):
    # "_" and "%" are not wildcards: a LIKE lookup matched any run with them.
    result = covey_eval("report", ref, "-o", "x.html")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: no eval run starts with '{ref}' (see `covey eval runs`)"]


def test_an_empty_reference_and_an_empty_home(covey_home):
    result = covey_eval("report", "last")
    assert result.exit_code == 1 and "no eval runs yet" in result.output
    assert len(result.output.strip().splitlines()) == 1
    schema.open_db(store.db_path()).close()
    result = covey_eval("report", "last")
    assert result.output.strip() == "Error: no finished eval run yet (see `covey eval runs`)"
    result = covey_eval("report", " ")
    assert result.exit_code == 1 and "give a run id" in result.output
