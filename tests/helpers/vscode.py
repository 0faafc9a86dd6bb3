"""Real VS Code for tests and benchmarks: code-server, the built .vsix, and the driver.

``tests/editors/e2e_vscode/run.mjs`` drives code-server with headless Chromium and writes
``result.json`` to its artifacts folder. ``tests/editors/test_vscode_e2e.py`` and
``benchmarks/bench_vscode.py`` both reach it through these helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "editors" / "e2e_vscode" / "run.mjs"
ARTIFACTS = REPO / "artifacts" / "vscode-e2e"


class SetupError(RuntimeError):
    """Installing code-server or building the extension failed (the message says how)."""


def _last_line(cmd: list[str], what: str, timeout: int) -> str:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        output = proc.stderr[-4000:] + proc.stdout[-2000:]
        raise SetupError(f"{what} failed ({proc.returncode}):\n{output}")
    return proc.stdout.strip().splitlines()[-1]


def install_code_server() -> str:
    """code-server's path, installed first if needed (scripts/install-code-server.sh)."""
    if shutil.which("node") is None:
        raise SetupError("node is not installed (Node 20 is needed for code-server and the "
                         "driver)")
    line = _last_line(["bash", "scripts/install-code-server.sh"], "install-code-server.sh", 900)
    return line.split("code-server: ", 1)[1]


def build_vsix() -> str:
    """The extension built into a .vsix (scripts/build-extension.sh); returns its path."""
    return _last_line(["bash", "scripts/build-extension.sh"], "build-extension.sh", 600)


@dataclass
class Run:
    """One run of the driver."""

    returncode: int
    result: dict
    """Its result.json ({} when it wrote none)."""
    stdout: str
    stderr: str
    artifacts: Path

    @property
    def failure(self) -> str:
        """Why it failed, in the driver's own words, for an assertion message."""
        return (f"VS Code e2e failed: {self.result.get('error') or self.stderr[-3000:]}\n"
                f"driver output:\n{self.stdout[-3000:]}\nartifacts: {self.artifacts}")


def drive(args: list[str], artifacts: Path, env: dict | None = None,
          timeout: int = 600) -> Run:
    """Runs the driver with ``args`` and returns what it did; the caller judges it."""
    artifacts.mkdir(parents=True, exist_ok=True)
    result_file = artifacts / "result.json"
    result_file.unlink(missing_ok=True)
    cmd = ["node", str(DRIVER), *args, "--artifacts", str(artifacts)]
    proc = subprocess.run(cmd, cwd=REPO, env=env or dict(os.environ), capture_output=True,
                          text=True, timeout=timeout)
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return Run(proc.returncode, result, proc.stdout, proc.stderr, artifacts)
