"""A second real client: headless Neovim 0.7 drives completion, inline completion, a
docstring code action (executeCommand → workspace/applyEdit, applied by Neovim itself) and
a next edit (``covey/nextEdit``, its WorkspaceEdit applied by Neovim)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.fake_openai import FakeOpenAI

SCRIPT = Path(__file__).parent / "nvim" / "covey_flow.lua"
NEXT_EDIT_SCRIPT = SCRIPT.with_name("covey_next_edit.lua")
SOURCE = '''def fibonacci(n):
    if n < 2:
        return n
    return <CURSOR>
'''.replace("<CURSOR>", "")
BUFFER = SOURCE.rstrip("\n")  # as Neovim's lines, joined
DOCSTRING = "Return the Fibonacci number at index n."
CALL = "fibonacci(n - 1) + fibonacci(n - 2)"

pytestmark = pytest.mark.skipif(shutil.which("nvim") is None,
                                reason="Neovim is not installed (apt-get install -y neovim)")


def run_flow(tmp_path: Path, script: Path, source_text: str, engine_url: str,
             api_key: str = "") -> dict:
    """Run a Lua flow in headless Neovim on a file holding ``source_text``, against
    ``engine_url``; its results JSON."""
    source = tmp_path / "fib.py"
    source.write_text(source_text)
    out = tmp_path / "results.json"
    env = {**os.environ, "COVEY_PYTHON": sys.executable, "COVEY_NVIM_OUT": str(out),
           "COVEY_NVIM_ENGINE_URL": engine_url, "COVEY_ENGINE_API_KEY": api_key,
           "COVEY_HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.run(["nvim", "--headless", "--clean", "-c", f"luafile {script}",
                          str(source)], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())
    print(json.dumps(results, indent=1))
    return results


def drive_neovim(tmp_path: Path, engine_url: str, api_key: str = "") -> dict:
    """The completion and docstring flow; its results, checked for what every run gives."""
    results = run_flow(tmp_path, SCRIPT, SOURCE, engine_url, api_key)
    assert "covey.generateDocstring" in results["commands"]
    assert results["action"] == "Covey: Generate docstring for fibonacci"
    assert results["accepted"] is True
    return results


def test_neovim_applies_the_exact_docstring_edit(tmp_path):
    with FakeOpenAI(f" {CALL}", by_model={"doc": DOCSTRING}) as fake:
        results = drive_neovim(tmp_path, fake.url)
    assert results["completion"] == CALL and results["inline"] == CALL
    assert results["applied"] is True and results.get("reason") is None
    assert results["buffer"] == BUFFER.replace("def fibonacci(n):\n",
                                               f'def fibonacci(n):\n    """{DOCSTRING}"""\n')


def test_neovim_leaves_the_buffer_alone_when_the_answer_is_refused(tmp_path):
    with FakeOpenAI(f" {CALL}", by_model={"doc": "```\n```"}) as fake:
        results = drive_neovim(tmp_path, fake.url)
    assert results["applied"] is False and "no docstring" in results["reason"]
    assert results["buffer"] == BUFFER


def test_neovim_with_the_real_engine(tmp_path, engine):
    """What holds for any answer: text for both completions, an ``applied`` flag that
    matches the buffer, a reason exactly when refused, and a buffer that parses."""
    results = drive_neovim(tmp_path, engine.url, engine.api_key)
    assert results["completion"].strip() and results["inline"].strip()
    assert isinstance(results["applied"], bool)
    assert (results["buffer"] != BUFFER) is results["applied"]
    assert bool(results.get("reason")) is not results["applied"]
    lines = results["buffer"].split("\n")
    assert lines[0] == "def fibonacci(n):" and lines[-3:] == BUFFER.split("\n")[-3:]
    compile(results["buffer"] + "0", "fib.py", "exec")  # the cursor line, finished


FIB = SOURCE.replace("return \n", "return fibonacci(n - 1) + fibonacci(n - 2)\n")


def test_neovim_reaches_the_next_edit_and_applies_it(tmp_path):
    renamed = FIB.replace("(n)", "(num)").replace("n <", "num <").replace("return n\n",
                                                                          "return num\n")
    renamed = renamed.replace("(n - ", "(num - ")
    answer = "2|    if num < 2:\n3|        return num\n4|    return fibonacci(num - 1) + " \
             "fibonacci(num - 2)"
    from covey_specialists.table import load_table

    name = load_table().for_task("next-edit").served_name
    with FakeOpenAI("unused", by_model={name: answer}) as fake:
        results = run_flow(tmp_path, NEXT_EDIT_SCRIPT, FIB, fake.url)
        (request,) = fake.completions()
    assert "def fibonacci(n):\n=======\ndef fibonacci(num):" in request.body["prompt"]
    assert results["range"] == {"start": {"line": 1, "character": 0},
                                "end": {"line": 4, "character": 0}}
    assert results["accepted"] is True
    assert results["buffer"] == renamed.rstrip("\n")
