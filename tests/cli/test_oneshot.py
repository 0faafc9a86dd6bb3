"""`covey complete`, `covey doc` and `covey refactor`: against the real engine, and their
one-line errors for bad files, lines and a dead engine."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers.fake_openai import FakeOpenAI
from helpers.net import dead_url

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


@pytest.fixture
def live(engine):
    return ["--engine-url", engine.url], {"COVEY_ENGINE_API_KEY": engine.api_key}


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


def outcome_holds_for_any_answer(result, sample) -> None:
    """Exit 0 with a diff and the file written, or one ``Error:`` line and the file as it
    was; the file parses either way."""
    written = sample.read_text()
    assert "Traceback" not in result.output
    assert (result.exit_code == 0) is (written != SOURCE)
    assert (result.exit_code == 0) is result.output.startswith("--- a/")
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == int(result.exit_code != 0)
    compile(written, "sample.py", "exec")


def test_doc_with_the_real_engine(run, sample, live):
    opts, env = live
    outcome_holds_for_any_answer(run("doc", sample, "--line", 2, "--write", *opts, env=env),
                                 sample)


def test_refactor_with_the_real_engine(run, sample, live):
    opts, env = live
    result = run("refactor", sample, "--lines", "7-11", "--instruction", "comprehension",
                 "--write", *opts, env=env)
    outcome_holds_for_any_answer(result, sample)
    assert sample.read_text().startswith(SOURCE.split("def total")[0])


# ---------------------------------------------------------------------- scripted answers

DOCSTRING = "Return the n-th Fibonacci number for index n."
REFACTORED = "```python\ndef total(items):\n    return sum(item for item in items)\n```"


def test_doc_prints_and_writes_the_exact_diff(run, sample):
    with FakeOpenAI(by_model={"doc": DOCSTRING}) as fake:
        result = run("doc", sample, "--line", 2, "--write", "--engine-url", fake.url)
    assert result.exit_code == 0, result.output
    expected = SOURCE.replace("def fibonacci(n):\n", f'def fibonacci(n):\n    """{DOCSTRING}"""\n')
    assert sample.read_text() == expected
    assert f'+    """{DOCSTRING}"""' in result.output.splitlines()
    changed = [ln for ln in result.output.splitlines()
               if ln.startswith(("+", "-")) and not ln.startswith("-- ")]  # not the timing
    assert changed == [
        f"--- a/{sample}", f"+++ b/{sample}", f'+    """{DOCSTRING}"""']


def test_refactor_prints_and_writes_the_exact_diff(run, sample):
    with FakeOpenAI(by_model={"refactor": REFACTORED}) as fake:
        result = run("refactor", sample, "--lines", "7-11", "--instruction", "use sum",
                     "--write", "--engine-url", fake.url)
    assert result.exit_code == 0, result.output
    assert sample.read_text() == SOURCE.split("def total")[0] + \
        "def total(items):\n    return sum(item for item in items)\n"
    assert "+    return sum(item for item in items)" in result.output.splitlines()


@pytest.mark.parametrize(("args", "answer", "message"), [
    (["doc", "--line", 2], {"doc": "```\n```"}, "the model wrote no docstring for fibonacci"),
    (["refactor", "--lines", "7-11", "--instruction", "use sum"],
     {"refactor": "```python\ndef total(items:\n    return sum(items\n```"}, "does not parse"),
])
def test_a_refused_answer_is_one_error_line_and_no_write(run, sample, args, answer, message):
    with FakeOpenAI(by_model=answer) as fake:
        result = run(args[0], sample, *args[1:], "--write", "--engine-url", fake.url)
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], lines
    assert sample.read_text() == SOURCE


@pytest.mark.parametrize("context, sees_definition", [("repo", True), ("none", False)])
def test_one_shot_completion_sends_the_repositorys_definitions(tmp_path, context,
                                                               sees_definition):
    """`covey complete` indexes the repository around the file, as the editor does, and
    sends the definitions the code near the cursor uses from other files."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "models.py").write_text(
        'def make_user(name: str, email: str) -> "User":\n    """Create a user."""\n')
    app = tmp_path / "shop" / "app.py"
    app.write_text("from shop.models import make_user\n\n\ndef greet(name):\n"
                   "    user = make_user(\n")
    with FakeOpenAI("name, '')") as fake:
        result = CliRunner().invoke(main, [
            "complete", str(app), "--line", "5", "--col", "22", "--engine-url", fake.url,
            "--context", context])
        prompt = fake.completions()[-1].body["prompt"]
    assert result.exit_code == 0, result.output
    assert ("def make_user(name: str, email: str)" in prompt) is sees_definition
    assert ("# shop/models.py" in prompt) is sees_definition
