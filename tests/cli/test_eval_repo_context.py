"""`covey eval run --suite repo` with --holes and --context: the options, the run's meta and
strata, and the prompt a scripted engine receives with and without repository context."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from helpers.fake_openai import FakeOpenAI
from helpers.synthetic_repo import synthetic_repo

from covey_cli import main
from covey_eval import repo

SIGNATURE = "def scale_price(amount, factor):"


def covey(*args):
    return CliRunner().invoke(main, ["eval", *args], catch_exceptions=False)


def test_holes_and_context_options(covey_home, tmp_path):
    synthetic_repo(tmp_path / "demo")
    result = covey("run", "--suite", "repo", "--repo", str(tmp_path / "demo"), "--holes",
                   "cross-file", "--context", "none", "--system", "oracle", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)
    assert run["meta"]["holes"] == "cross-file" and run["meta"]["context"] == "none"
    assert run["n_tasks"] == 2
    strata = run["summary"]["oracle"]["by_stratum"]
    assert set(strata) == {"cross-file", "cross-file/one-line", "cross-file/multi-line",
                           "one-line", "multi-line"}
    assert strata["cross-file"]["n"] == 2 and strata["one-line"]["n"] == 1
    page = tmp_path / "report.html"
    assert covey("report", run["run_id"], "-o", str(page)).exit_code == 0
    html = page.read_text()
    assert "holes cross-file · context none" in html and "by stratum</h2>" in html
    assert "<th>cross-file/one-line</th>" in html
    table = covey("run", "--suite", "repo", "--repo", str(tmp_path / "demo"), "--holes",
                  "cross-file", "--system", "oracle")
    words = " ".join(table.output.split())  # however rich wraps the title and caption
    assert "holes cross-file, context repo" in words and "cross-file 100.0% (n 2)" in words
    # the defaults: every hole, repository context
    result = covey("run", "--suite", "repo", "--repo", str(tmp_path / "demo"), "--system",
                   "oracle", "--json")
    run = json.loads(result.output)
    assert run["meta"]["holes"] == "all" and run["meta"]["context"] == "repo"
    assert {"cross-file", "in-file"} <= set(run["summary"]["oracle"]["by_stratum"])
    # a suite without a repository records no holes and no context
    result = covey("run", "--suite", "stdlib-doc", "--limit", "2", "--system", "oracle",
                   "--json")
    meta = json.loads(result.output)["meta"]
    assert meta["holes"] is None and meta["context"] == "none"


def test_option_errors_are_one_line(covey_home):
    result = covey("run", "--suite", "humaneval-sl", "--holes", "cross-file", "--system",
                   "oracle")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == ("Error: --holes cross-file needs --suite repo (only a "
                                     "repository has other files to import from)")
    result = covey("run", "--suite", "repo", "--repo", ".", "--holes", "some", "--system",
                   "oracle")
    assert result.exit_code == 2 and "'some' is not one of 'all', 'cross-file'" in result.output
    result = covey("run", "--suite", "repo", "--repo", ".", "--context", "tabs", "--system",
                   "oracle")
    assert result.exit_code == 2 and "'tabs' is not one of 'repo', 'none'" in result.output


def test_the_cli_choices_are_the_suites(covey_home):
    params = {p.name: p for p in main.commands["eval"].commands["run"].params}
    assert tuple(params["holes"].type.choices) == repo.HOLES
    assert tuple(params["context"].type.choices) == repo.CONTEXTS


def _run(fake: FakeOpenAI, root: Path, context: str, *systems: str) -> dict:
    args = ["run", "--suite", "repo", "--repo", str(root), "--holes", "cross-file",
            "--context", context, "--engine-url", fake.url, "--concurrency", "1", "--json"]
    for system in systems:
        args += ["--system", system]
    result = covey(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_repo_context_reaches_the_engine_and_the_runs_compare(covey_home, tmp_path):
    root = synthetic_repo(tmp_path / "demo")
    with FakeOpenAI("    return 0") as fake:
        with_context = _run(fake, root, "repo", "specialist", "base")
        sent_with = [r.body["prompt"] for r in fake.requests]
        fake.requests.clear()
        without = _run(fake, root, "none", "specialist", "base")
        sent_without = [r.body["prompt"] for r in fake.requests]
    assert len(sent_with) == len(sent_without) == 4  # 2 holes × 2 systems
    for prompt in sent_with:  # the other file's definition and its path, for both systems
        assert SIGNATURE in prompt and "pkg/helpers.py" in prompt, prompt
    for prompt in sent_without:
        assert SIGNATURE not in prompt and "pkg/helpers.py" not in prompt, prompt
    assert with_context["meta"]["context"] == "repo" and without["meta"]["context"] == "none"
    # the two runs pair on the same holes, per system
    result = covey("compare", with_context["run_id"], without["run_id"], "--json")
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.output)
    assert comparison["n_shared"] == 2
    assert {r["system"] for r in comparison["rows"]} == {"specialist", "base"}
    assert all(r["n"] == 2 for r in comparison["rows"])
