"""The eval's routed system and sweep against the real engine (the baseline a fake
OpenAI-compatible server that counts requests, or the untuned base standing in)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers.engine_table import serveable_home
from helpers.fake_openai import FakeOpenAI

from covey_cli import main
from covey_eval import session, suites
from covey_specialists.tasks.completion import editor_indent
from covey_usage import open_usage_log
from covey_usage.queries import open_for_reading

pytestmark = pytest.mark.engine


def return_zero(body: dict) -> str:
    """``return 0`` at the indentation an editor types at the cursor, so it is a valid
    answer wherever the hole is (the router checks answers as the editor does)."""
    user = body["messages"][-1]["content"]
    return editor_indent(user.split("<CURSOR>", 1)[0]) + "return 0"


@pytest.fixture
def home(engine, covey_home, monkeypatch):
    """A fresh Covey home whose table the shared engine can serve (an engine started before
    the shipped adapters serves only the base)."""
    for var in ("COVEY_BASELINE_URL", "COVEY_BASELINE_MODEL", "COVEY_BASELINE_API"):
        monkeypatch.delenv(var, raising=False)
    serveable_home(engine, covey_home)
    return covey_home


def _routed(engine, home, fake, routing: dict, n: int = 4) -> tuple[dict, list[dict]]:
    tasks = suites.load("humaneval-sl", limit=n, seed=0)
    db_path = home / "usage.db"
    usage = open_usage_log(db_path, meter=False, settle_s=0.2)
    try:
        result = session.run_eval(
            "humaneval-sl", ["routed"], tasks,
            session.Settings(engine_url=engine.url, engine_key=engine.api_key,
                             baseline_url=fake.url, baseline_model="gpt-4.1",
                             routing=routing),
            limit=n, concurrency=4, usage=usage, usage_path=db_path)
    finally:
        usage.close()
    db = open_for_reading(db_path)
    calls = list(db["calls"].rows_where("eval_run_id = ?", [result["run_id"]]))
    db.close()
    return result, calls


def test_routed_escalates_every_unsure_answer_and_pays_for_both_calls(engine, home):
    with FakeOpenAI(return_zero) as fake:
        result, calls = _routed(engine, home, fake, {"routing": "on-low-confidence",
                                                     "min_mean_logprob": 0.0})
    routed = result["summary"]["routed"]
    assert len(fake.requests) == 4 and routed["escalation_rate"] == 1.0
    assert "on-low-confidence" in routed["label"] and routed["kind"] == "routed"
    assert sorted((c["source"], c["status"]) for c in calls) == \
        [("baseline", "ok")] * 4 + [("specialist", "escalated")] * 4
    for row in result["rows"]:
        assert len(row["call_ids"]) == 2 and row["source"] == "baseline"
        assert row["answer"].strip() == "return 0"  # the baseline's answer was served
        assert row["spent_usd"] > row["local_cost_usd"] > 0  # both calls paid
    assert routed["cost"]["spent_per_1k"] > routed["cost"]["local_per_1k"]


def test_routed_under_never_sends_nothing_to_the_baseline(engine, home):
    with FakeOpenAI("    return 0") as fake:
        result, calls = _routed(engine, home, fake, {"routing": "never"})
    assert fake.requests == [] and result["summary"]["routed"]["escalation_rate"] == 0.0
    assert {c["source"] for c in calls} == {"specialist"}


def test_sweep_with_the_untuned_base_standing_in(engine, home, tmp_path):
    report = tmp_path / "sweep.html"
    out = CliRunner().invoke(main, [
        "eval", "sweep", "--suite", "humaneval-sl", "--limit", "4", "--points", "2",
        "--engine-url", engine.url, "--engine-key", engine.api_key, "--json",
        "-o", str(report)])
    assert out.exit_code == 0, out.output
    swept = json.loads(out.output)
    assert any("stands in for the baseline LLM" in n for n in swept["notes"])
    assert swept["baseline_label"].startswith("untuned base standing in for the baseline LLM")
    points = swept["points"]
    assert points[0]["policy"] == "never" and points[-1]["policy"] == "always-baseline"
    assert points[0]["escalation_rate"] == 0.0 and points[-1]["escalation_rate"] == 1.0
    assert points[-1]["spent_per_1k"] > points[0]["spent_per_1k"] > 0
    assert swept["recommended"] is not None
    html = report.read_text()
    assert "Routing sweep" in html and "★" in html
    assert "untuned base standing in for the baseline LLM" in html
    # the stored answers replay under another metric without asking the models again
    again = CliRunner().invoke(main, ["eval", "sweep", "--from-run", swept["run_id"],
                                      "--metric", "edit_similarity", "--points", "3", "--json"])
    assert again.exit_code == 0, again.output
    replayed = json.loads(again.output)
    assert replayed["metric"] == "edit_similarity" and replayed["run_id"] == swept["run_id"]
    assert [p["escalation_rate"] for p in replayed["points"]][::len(replayed["points"]) - 1] \
        == [0.0, 1.0]
