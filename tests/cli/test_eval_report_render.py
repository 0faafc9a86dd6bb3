"""The HTML report opens in a real browser: headless Chromium renders it to a screenshot,
kept in artifacts/ as a test artifact."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from covey_cli import main

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def test_report_renders_in_headless_chromium(covey_home, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (scripts/install-code-server.sh installs it)"
    runner = CliRunner()
    run = runner.invoke(main, ["eval", "run", "--suite", "humaneval-sl", "--system", "oracle",
                               "--system", "empty", "--limit", "40", "--json"])
    assert run.exit_code == 0, run.output
    run_id = json.loads(run.output)["run_id"]
    ARTIFACTS.mkdir(exist_ok=True)
    page, shot = ARTIFACTS / "eval-report.html", ARTIFACTS / "eval-report.png"
    shot.unlink(missing_ok=True)
    report = runner.invoke(main, ["eval", "report", run_id, "-o", str(page)])
    assert report.exit_code == 0, report.output
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1300,1600",
         f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a rendered page, not blank
