"""A second real client: headless Neovim 0.7 drives completion, inline completion and a
docstring code action (executeCommand → workspace/applyEdit, applied by Neovim itself)."""

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


def drive_neovim(tmp_path: Path, engine_url: str, api_key: str = "") -> dict:
    """Run the Lua flow in headless Neovim against ``engine_url``; its results JSON."""
    source = tmp_path / "fib.py"
    source.write_text(SOURCE)
    out = tmp_path / "results.json"
    env = {**os.environ, "COVEY_PYTHON": sys.executable, "COVEY_NVIM_OUT": str(out),
           "COVEY_NVIM_ENGINE_URL": engine_url, "COVEY_ENGINE_API_KEY": api_key,
           "COVEY_HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.run(["nvim", "--headless", "--clean", "-c", f"luafile {SCRIPT}",
                          str(source)], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())
    print(json.dumps(results, indent=1))
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
