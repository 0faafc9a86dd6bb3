"""`covey eval` through click's runner, with a temporary Covey home."""

import json
import sys

import pytest
from click.testing import CliRunner
from helpers.fake_openai import FakeOpenAI

from covey_cli import main
from covey_eval import session
from covey_eval.session import NO_BASELINE, Settings, resolve_systems, wide_batch_notes
from covey_specialists import engine


def covey(*args):
    result = CliRunner().invoke(main, ["eval", *args], catch_exceptions=False)
    return result


@pytest.mark.slow
def test_full_humaneval_sl_oracle_passes_all_and_empty_about_2_6_percent(covey_home):
    result = covey("run", "--suite", "humaneval-sl", "--system", "oracle", "--system", "empty",
                   "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)
    assert run["n_tasks"] == 1033
    oracle, empty = run["summary"]["oracle"], run["summary"]["empty"]
    assert oracle["metrics"]["pass@1"]["mean"] == 1.0
    assert oracle["metrics"]["exact_match"]["mean"] == 1.0
    assert empty["metrics"]["pass@1"]["mean"] == pytest.approx(0.026, abs=0.004)
    lo, hi = empty["metrics"]["pass@1"]["lo"], empty["metrics"]["pass@1"]["hi"]
    assert lo < 0.026 < hi
    # stored in the usage database: listed, reportable
    runs = json.loads(covey("runs", "--json").output)
    assert runs[0]["id"] == run["run_id"] and runs[0]["status"] == "finished"


def test_small_runs_report_and_compare(covey_home, tmp_path):
    ids = []
    for seed in ("1", "1"):  # the same sample twice: every task is shared
        result = covey("run", "--suite", "stdlib-doc", "--system", "oracle", "--system", "empty",
                       "--limit", "12", "--seed", seed, "--json")
        assert result.exit_code == 0, result.output
        ids.append(json.loads(result.output)["run_id"])
    out = tmp_path / "report.html"
    result = covey("report", ids[0], "-o", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<svg" in page and "ROUGE-L" in page and "oracle" in page and "<script" not in page
    result = covey("compare", ids[0][:14], "last", "--json")
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.output)
    assert {r["system"] for r in comparison["rows"]} == {"oracle", "empty"}
    table = covey("compare", ids[0], ids[1])
    assert table.exit_code == 0 and "12 shared tasks" in table.output
    assert "difference" in table.output and "higher" not in table.output


def test_two_systems_of_one_run_compare_paired_on_the_next_edit_suite(covey_home):
    result = covey("run", "--suite", "next-edit", "--system", "oracle", "--system", "empty",
                   "--limit", "30", "--seed", "3", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    due = 1 - summary["empty"]["metrics"]["exact_match"]["mean"]  # saying nothing is right
    assert 0 < due < 1  # on the negatives only
    assert summary["oracle"]["metrics"]["delta_chrf"]["mean"] == 1.0
    assert summary["empty"]["metrics"]["no_change_recall"]["mean"] == 1.0
    result = covey("compare", "last", "last", "--systems", "empty", "oracle", "--json")
    rows = {r["metric"]: r for r in json.loads(result.output)["rows"]}
    assert rows["exact_match"]["system"] == "oracle − empty"
    assert rows["exact_match"]["diff"] == pytest.approx(due)
    assert rows["exact_match"]["lo"] > 0


def test_refactor_suite_oracle_preserves_behaviour(covey_home):
    result = covey("run", "--suite", "stdlib-refactor", "--system", "oracle", "--limit", "6",
                   "--json")
    assert result.exit_code == 0, result.output
    oracle = json.loads(result.output)["summary"]["oracle"]["metrics"]
    assert oracle["behaviour_preserved"]["mean"] == 1.0 and oracle["parses"]["mean"] == 1.0
    # the oracle hands back the code unchanged: behaviour kept, nothing refactored
    assert oracle["success"]["mean"] == 0.0


def test_repo_suite_scored_by_its_own_tests(covey_home, tmp_path):
    repo = tmp_path / "demo"
    repo.mkdir()
    (repo / "calc.py").write_text(
        "def total(items):\n"
        "    result = 0\n"
        "    for item in items:\n"
        "        result += item\n"
        "    return result\n")
    (repo / "test_calc.py").write_text(
        "from calc import total\n\n\ndef test_total():\n    assert total([1, 2, 3]) == 6\n")
    result = covey("run", "--suite", "repo", "--repo", str(repo), "--test-command",
                   f"{sys.executable} -m pytest -q -p no:cacheprovider", "--system", "oracle",
                   "--system", "empty", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    assert summary["oracle"]["metrics"]["pass@1"]["mean"] == 1.0
    assert summary["empty"]["metrics"]["pass@1"]["mean"] < 1.0


def test_baseline_through_a_fake_endpoint_is_priced(covey_home):
    with FakeOpenAI("    return 0") as fake:
        result = covey("run", "--suite", "humaneval-sl", "--limit", "4", "--system", "baseline",
                       "--baseline-url", fake.url, "--baseline-model", "gpt-4.1", "--json")
    assert result.exit_code == 0, result.output
    baseline = json.loads(result.output)["summary"]["baseline"]
    assert baseline["kind"] == "llm" and "gpt-4.1" in baseline["label"]
    assert baseline["tokens"] == {"prompt": 400, "completion": 28}
    # 100 in + 7 out tokens at $2 / $8 per million, per task, × 1,000 tasks
    assert baseline["cost"]["llm_equiv_per_1k"] == pytest.approx((100 * 2 + 7 * 8) / 1e6 * 1000)


def test_no_baseline_configured_says_so_and_uses_the_base(monkeypatch):
    names, notes = resolve_systems(["oracle", "baseline"], None)
    assert names == ["oracle", "base"] and notes == [NO_BASELINE]
    assert "no LLM" in NO_BASELINE


@pytest.mark.parametrize("cores,cpus,concurrency,systems,noted", [
    (engine.EDITOR_CORES, 2, 8, ["specialist"], True),
    (engine.EDITOR_CORES, 2, 2, ["specialist"], False),  # two in flight did not time out
    (engine.EDITOR_CORES, 2, 8, ["oracle"], False),  # nothing asks the engine
    (engine.EDITOR_CORES, 16, 8, ["specialist"], False),  # the model has 15 cores
    ("all (for batch jobs)", 2, 8, ["base"], False),
])
def test_a_wide_batch_on_the_editors_cpu_engine_points_to_all_cores(
        covey_home, monkeypatch, cores, cpus, concurrency, systems, noted):
    monkeypatch.setattr(session, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(engine, "status", lambda table: engine.EngineStatus(
        state="up", url="http://127.0.0.1:8733", device="cpu", model_cores=cores))
    notes = wide_batch_notes(systems, Settings(), concurrency)
    assert bool(notes) == noted
    assert all("covey engine up --all-cores" in note for note in notes)


def test_user_errors_are_one_line(covey_home):
    result = covey("run", "--suite", "nope", "--system", "oracle")
    assert result.exit_code == 1 and "unknown suite 'nope'" in result.output
    assert "Traceback" not in result.output
    result = covey("run", "--suite", "repo", "--system", "oracle")
    assert result.exit_code == 1 and "--repo PATH" in result.output
    result = covey("run", "--suite", "humaneval-sl", "--system", "base", "--limit", "1",
                   "--engine-url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "not reachable" in result.output
    result = covey("report", "zzz")
    assert result.exit_code == 1 and "no eval run" in result.output


def test_suites_lists_sizes(covey_home):
    result = covey("suites", "--json")
    sizes = {r["name"]: r["tasks"] for r in json.loads(result.output)}
    assert sizes["humaneval-sl"] == 1033 and sizes["humaneval-ml"] == 5815
