"""VS Code itself, end to end: the built .vsix in code-server, driven by headless Chromium.

tests/editors/e2e_vscode/run.mjs does the driving (open a Python file, type, see ghost text from
the real engine, accept with Tab, "Generate docstring", "Refactor selection…" through the
input box, latency in the status bar) and
writes screenshots and ``result.json`` to ``artifacts/vscode-e2e/``. This wrapper installs
what it needs (scripts/install-code-server.sh, idempotent), builds the extension
(scripts/build-extension.sh), both through tests/helpers/vscode.py, and hands the
``engine`` fixture's URL and key to VS Code through the ``covey.engine.url`` setting and
``COVEY_ENGINE_API_KEY``.

Set ``COVEY_SKIP_VSCODE_E2E=1`` to skip it (e.g. on a machine without apt).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import sqlite_utils
from helpers.fake_openai import FakeOpenAI, Scripted
from helpers.vscode import ARTIFACTS, SetupError, build_vsix, drive, install_code_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("COVEY_SKIP_VSCODE_E2E") == "1",
                       reason="COVEY_SKIP_VSCODE_E2E=1"),
]


@pytest.fixture(scope="session")
def code_server() -> str:
    try:
        return install_code_server()
    except SetupError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def vsix() -> str:
    try:
        return build_vsix()
    except SetupError as error:
        pytest.fail(str(error))


def _drive(args: list[str], artifacts: Path, env: dict | None = None) -> dict:
    """Runs the driver; returns its result.json, failing with its own words if it failed."""
    run = drive(args, artifacts, env)
    print(run.stdout)
    assert run.returncode == 0, run.failure
    assert run.result["ok"] is True
    return run.result


@pytest.mark.engine
def test_extension_in_vscode(code_server, vsix, engine):
    env = {**os.environ, "COVEY_ENGINE_API_KEY": engine.api_key}
    result = _drive(["--code-server", code_server, "--vsix", vsix, "--python", sys.executable,
                     "--engine-url", engine.url], ARTIFACTS, env)
    # What the driver checked, restated so a failure in its bookkeeping shows here too.
    assert result["servedText"], "the server served no ghost text"
    assert result["checks"]["tabInsertsServedText"] is True
    assert result["checks"]["acceptReported"] is True
    assert result["checks"]["refactorInstructionSent"] is True
    assert '"""' in result["checks"]["docstring"] or "'''" in result["checks"]["docstring"]
    assert " ms" in result["checks"]["statusLatency"] or " s" in result["checks"]["statusLatency"]
    print(f"keystroke -> ghost text: {result['ghostLatencyMs']} ms "
          f"(model call {round(result.get('modelLatencyMs') or 0)} ms); "
          f"docstring action -> edit: {result['docstringMs']} ms; "
          f"refactor answered: {result['refactorMs']} ms")


def test_start_failure_is_one_notification(code_server, vsix, tmp_path):
    """A Python without Covey: one notification with "Open Log", even after two restarts."""
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'covey_server'\" >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    result = _drive(["--scenario", "start-failure", "--code-server", code_server, "--vsix", vsix,
                     "--python", str(fake)], ARTIFACTS.with_name("vscode-e2e-start-failure"))
    assert "No module named 'covey_server'" in result["checks"]["oneNotification"]
    assert "server failed" in result["checks"]["statusFailed"]


def test_engine_down_stays_quiet(code_server, vsix):
    """Nothing listens at the engine URL: the status bar says so, typing sends no
    inline-completion requests, and at most one notification explains it. Then a changed
    setting restarts the server with the new value, "Covey: Start Engine" reaches the
    server, and "Covey: Show Usage" opens the usage page."""
    result = _drive(["--scenario", "engine-down", "--code-server", code_server, "--vsix", vsix,
                     "--python", sys.executable, "--engine-url", "http://127.0.0.1:9"],
                    ARTIFACTS.with_name("vscode-e2e-engine-down"))
    assert "engine down" in result["checks"]["statusDown"]
    assert result["checks"]["quiet"] is True
    assert result["checks"]["restartOnSettings"] is True
    assert result["checks"]["engineStartCommand"] is True
    assert result["checks"]["usageView"].startswith("Covey usage")


def test_word_by_word_accepts_and_retention_reach_the_usage_log(code_server, vsix, tmp_path):
    """Accept Next Word twice, then type something else: the log shows a partial accept of
    exactly what VS Code inserted. Escape over the next suggestion: rejected. A Tab accept
    kept past the first retention horizon, then deleted: retained at the first check, not
    at the next. The engine is scripted (the mechanism is under test, not what a model
    says); the horizons are shortened to the driver's KEEP_MS and AFTER_DELETE_MS."""
    home = tmp_path / "covey-home"
    home.mkdir()
    (home / "config.toml").write_text("[server]\nretention_horizons_s = [2.0, 5.0, 6.0]\n")
    words = ["return", " fib", "(n", " -", " 1)", " +", " fib", "(n", " -", " 2)"]
    answer = Scripted(tokens=words, logprobs=[-0.05] * len(words))
    with FakeOpenAI(by_model={"completion": answer}) as fake:
        result = _drive(["--scenario", "feedback", "--code-server", code_server, "--vsix", vsix,
                         "--python", sys.executable, "--engine-url", fake.url],
                        ARTIFACTS.with_name("vscode-e2e-feedback"),
                        {**os.environ, "COVEY_HOME": str(home), "COVEY_ENGINE_API_KEY": "k"})
    db = sqlite_utils.Database(home / "usage.db")
    try:
        rows = list(db.query("SELECT * FROM suggestions WHERE outcome IS NOT NULL"))
    finally:
        db.close()
    checks = result["checks"]
    partial = [r for r in rows if r["outcome"] == "partial"]
    accepted = [r for r in rows if r["outcome"] == "accepted"]
    assert 0 < len(checks["partialAccepted"]) < len("".join(words))
    assert [r["accepted_chars"] for r in partial] == [len(checks["partialAccepted"])], rows
    assert checks["fullAccepted"] == "".join(words)
    (full,) = accepted
    assert full["accepted_chars"] == len(checks["fullAccepted"])
    assert (full["retained_30s"], full["retained_120s"], full["retained_300s"]) == (1, 0, 0)
    # Escape over ghost text: only the extension knows it, and the log has it as rejected
    assert checks["dismissed"] is True
    assert [(r["outcome"], r["accepted_chars"]) for r in rows
            if r["outcome"] == "rejected"] == [("rejected", 0)], rows


def test_a_next_edit_is_shown_and_applied_with_tab(code_server, vsix, tmp_path):
    """Rename a parameter in VS Code: the server proposes its use (the engine is scripted:
    it answers the numbered window line that holds the use), the extension shows it, Tab
    applies it, and the usage log has the next-edit call as accepted."""
    home = tmp_path / "covey-home"
    home.mkdir()

    def answer(body: dict) -> str:
        prompt = body.get("prompt", "")
        for line in prompt.splitlines():
            number, _, text = line.partition("|")
            if number.isdigit() and text == "    return math.pi * radius ** 2":
                return f"{number}|    return math.pi * r ** 2"
        return "<NO_CHANGE>"

    from covey_specialists.table import load_table

    name = load_table().for_task("next-edit").served_name
    with FakeOpenAI("", by_model={name: answer}) as fake:
        result = _drive(["--scenario", "next-edit", "--code-server", code_server, "--vsix", vsix,
                         "--python", sys.executable, "--engine-url", fake.url],
                        ARTIFACTS.with_name("vscode-e2e-next-edit"),
                        {**os.environ, "COVEY_HOME": str(home), "COVEY_ENGINE_API_KEY": "k"})
    checks = result["checks"]
    assert checks["nextEditProposed"] == "    return math.pi * r ** 2\n"
    assert checks["nextEditApplied"] is True
    db = sqlite_utils.Database(home / "usage.db")
    try:
        row = db["suggestions"].get(checks["nextEditCallId"])
        call = db["calls"].get(checks["nextEditCallId"])
    finally:
        db.close()
    assert call["task"] == "next-edit"
    assert (row["outcome"], row["accepted_chars"]) == ("accepted", len(checks["nextEditProposed"]))
