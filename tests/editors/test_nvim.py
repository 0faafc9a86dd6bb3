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
from test_lsp import real_engine  # noqa: F401 - the shared engine fixture

SCRIPT = Path(__file__).parent / "nvim" / "covey_flow.lua"
SOURCE = '''def fibonacci(n):
    if n < 2:
        return n
    return <CURSOR>
'''.replace("<CURSOR>", "")

pytestmark = pytest.mark.skipif(shutil.which("nvim") is None,
                                reason="Neovim is not installed (apt-get install -y neovim)")


def test_neovim_drives_the_server(tmp_path, real_engine):  # noqa: F811
    source = tmp_path / "fib.py"
    source.write_text(SOURCE)
    out = tmp_path / "results.json"
    env = {**os.environ, "COVEY_PYTHON": sys.executable, "COVEY_NVIM_OUT": str(out),
           "COVEY_NVIM_ENGINE_URL": real_engine.url,
           "COVEY_ENGINE_API_KEY": real_engine.api_key,
           "COVEY_HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.run(["nvim", "--headless", "--clean", "-c", f"luafile {SCRIPT}",
                          str(source)], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())
    print(json.dumps(results, indent=1))
    assert "covey.generateDocstring" in results["commands"]
    assert results["completion"].strip()
    assert results["inline"].strip()
    assert results["accepted"] is True
    assert results["action"] == "Covey: Generate docstring for fibonacci"
    if results["applied"]:
        buffer = results["buffer"]
        assert buffer.split("\n")[1].lstrip().startswith('"""')
        compile(buffer.replace("    return \n", "    return 0\n"), "fib.py", "exec")
    else:
        assert results["reason"]
