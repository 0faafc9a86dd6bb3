"""After the engine process is killed, Covey recovers without a manual cleanup.

Runs last (see conftest's ordering hook): it kills the session's shared engine and brings
it back on the same port with the same key, so nothing after it notices.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from click.testing import CliRunner

from covey_cli import main
from covey_specialists import engine as manager
from covey_specialists.table import load_table

pytestmark = [pytest.mark.engine, pytest.mark.restarts_engine]


def test_killed_engine_is_reported_and_recovered(engine):
    if not engine.managed and manager.status(load_table()).state != "up":
        pytest.skip("engine is not managed from this test home")
    table = load_table()
    before = manager.status(table)
    os.killpg(before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while manager.status(table).state != "down" and time.monotonic() < deadline:
        time.sleep(0.2)

    runner = CliRunner()
    status = json.loads(runner.invoke(main, ["engine", "status", "--json"]).output)
    assert status["state"] == "down"
    assert "covey engine up" in status["reason"]

    result = runner.invoke(main, ["engine", "up"])  # no manual cleanup first
    assert result.exit_code == 0, result.output
    after = manager.status(table)
    assert after.state == "up" and after.pid != before.pid and after.url == before.url
