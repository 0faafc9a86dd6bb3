"""A small eval run against the real engine: calls logged, timed, priced, run stored."""

import pytest
from helpers.engine_table import serveable_home

from covey_eval import session, store, suites
from covey_usage import open_usage_log
from covey_usage.queries import open_for_reading

pytestmark = pytest.mark.engine


def test_base_and_specialist_on_the_real_engine(engine, covey_home):
    unserved = serveable_home(engine, covey_home)
    tasks = suites.load("humaneval-sl", limit=6, seed=0)
    db_path = covey_home / "usage.db"
    usage = open_usage_log(db_path, meter=False, settle_s=0.2)
    try:
        result = session.run_eval(
            "humaneval-sl", ["base", "specialist", "oracle"], tasks,
            session.Settings(engine_url=engine.url, engine_key=engine.api_key),
            limit=6, concurrency=4, usage=usage, usage_path=db_path)
    finally:
        usage.close()
    base = result["summary"]["base"]
    assert base["n"] == 6 and base["errors"] == 0 and base["kind"] == "local"
    assert "LLM" not in base["label"]  # a small model is never called an LLM
    assert base["latency_ms"]["ttft_p50"] > 0
    assert base["latency_ms"]["total_p95"] >= base["latency_ms"]["total_p50"]
    assert base["tokens"]["prompt"] > 0 and base["tokens"]["completion"] > 0
    assert base["cost"]["llm_equiv_per_1k"] > 0 and base["cost"]["local_per_1k"] is not None
    # pass@1 is the share of the base's rows whose tests passed, counted here by hand
    base_rows = [r for r in result["rows"] if r["system"] == "base"]
    assert len(base_rows) == 6 and {r["pass@1"] for r in base_rows} <= {0, 1}
    assert base["metrics"]["pass@1"]["mean"] == pytest.approx(
        sum(r["pass@1"] for r in base_rows) / 6)
    assert base["metrics"]["pass@1"]["n"] == 6
    # every engine call is in the usage log, tagged with the eval run
    db = open_for_reading(db_path)
    rows = list(db["calls"].rows_where("eval_run_id = ?", [result["run_id"]]))
    db.close()
    assert len(rows) == 12 and {r["client"] for r in rows} == {"eval"}
    # the base, and the completion adapter where the engine serves it
    assert {r["model"] for r in rows} == {"base"} | (
        set() if "completion" in unserved else {"completion"})
    stored = store.load_run(result["run_id"], db_path)
    assert stored["summary"]["oracle"]["metrics"]["pass@1"]["mean"] == 1.0
