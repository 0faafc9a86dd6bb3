"""`covey complete`, `covey doc` and `covey refactor`: against the real engine, and their
one-line errors for bad files, lines and a dead engine."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from covey_cli import main

SOURCE = '''def fibonacci(n):
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


def total(items):
    result = 0
    for item in items:
        result = result + item
    return result
'''
TO_COMPLETE = SOURCE + '''

def mean(values):
    return sum(values) / <CURSOR>
'''.replace("<CURSOR>", "")
MEAN_LINE, MEAN_COL = 15, len("    return sum(values) / ") + 1


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text(SOURCE)
    return path


@pytest.fixture
def run(covey_home):
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def live(real_engine):
    return ["--engine-url", real_engine.url], {"COVEY_ENGINE_API_KEY": real_engine.api_key}


@pytest.fixture(scope="session")
def real_engine(request):
    from test_lsp import dev_engine

    try:
        return request.getfixturevalue("engine")
    except pytest.FixtureLookupError:
        found = dev_engine()
        if found is None:
            pytest.skip("no engine available")
        return found


# ---------------------------------------------------------------------- errors, no engine

@pytest.mark.parametrize(("args", "message"), [
    (["complete", "{missing}", "--line", "1", "--col", "1"], "no such file"),
    (["complete", "{bad}", "--line", "1", "--col", "1"], "not UTF-8 text"),
    (["complete", "{binary}", "--line", "1", "--col", "1"], "looks like a binary file"),
    (["complete", "{sample}", "--line", "99", "--col", "1"], "line 99 is outside the file"),
    (["complete", "{sample}", "--line", "1", "--col", "99"], "column 99 is outside line 1"),
    (["complete", "{sample}", "--line", "1", "--col", "3"], "no completion here: mid-word"),
    (["doc", "{sample}", "--line", "6"], "no function or class at line 6"),
    (["refactor", "{sample}", "--lines", "7-x", "--instruction", "simplify"], "expected A-B"),
    (["refactor", "{sample}", "--lines", "5-6", "--instruction", "simplify"],
     "the selection is empty"),
    (["doc", "{sample}", "--line", "1"], "is not answering; start it with `covey engine up`"),
])
def test_one_line_errors(run, sample, tmp_path, args, message):
    files = {"missing": tmp_path / "nope.py", "sample": sample,
             "bad": tmp_path / "bad.py", "binary": tmp_path / "bin.py"}
    files["bad"].write_bytes(b"x = '\xff'\n")
    files["binary"].write_bytes(b"\x00\x01\x02")
    argv = [a.format(**files) for a in args] + ["--engine-url", dead_url()]
    result = run(*argv)
    assert result.exit_code != 0
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert message in lines[-1]
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------- with the engine

def test_complete_prints_the_completion_and_timing(run, tmp_path, live):
    opts, env = live
    sample = tmp_path / "mean.py"
    sample.write_text(TO_COMPLETE)
    result = run("complete", sample, "--line", MEAN_LINE, "--col", MEAN_COL, "--json", *opts,
                 env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["completion"].strip() and data["latencyMs"] > 0
    assert data["completionTokens"] > 0 and data["multiline"] is False
    text = run("complete", sample, "--line", MEAN_LINE, "--col", MEAN_COL, *opts, env=env)
    assert text.exit_code == 0 and "ms (first token" in text.output


def test_doc_prints_a_diff_that_parses(run, sample, live):
    opts, env = live
    result = run("doc", sample, "--line", 2, "--write", *opts, env=env)
    if result.exit_code == 0:
        assert "+++ b/" in result.output and '+    """' in result.output
        compile(sample.read_text(), "sample.py", "exec")
    else:  # the model's answer was refused, with the reason in one line
        assert "Error:" in result.output and sample.read_text() == SOURCE


def test_refactor_prints_a_diff_that_parses(run, sample, live):
    opts, env = live
    result = run("refactor", sample, "--lines", "7-11", "--instruction", "comprehension",
                 "--write", *opts, env=env)
    if result.exit_code == 0:
        assert result.output.startswith("--- a/")
        compile(sample.read_text(), "sample.py", "exec")
    else:
        assert "Error:" in result.output and sample.read_text() == SOURCE
