"""The HTML report's summary table fits a 1,300-pixel window, and a wider one scrolls in
its own box rather than pushing the page off the right edge.

The worst case here is wider than any suite gives: six systems, eight quality metrics,
long labels and every cost filled. Headless Chromium measures the laid-out page; its
screenshot is kept in artifacts/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from covey_eval import report

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
METRICS = ("pass@1", "success", "behaviour_preserved", "exact_match", "edit_similarity",
           "parses", "instruction_satisfied", "diff_lines")
SYSTEMS = ("specialist", "base", "base-specialist-prompt", "baseline", "routed", "oracle")


def wide_result() -> dict:
    def metric(name: str) -> dict:
        if name == "diff_lines":
            return {"mean": 12.3, "lo": 10.1, "hi": 14.4, "n": 1033}
        return {"mean": 0.987, "lo": 0.912, "hi": 0.999, "n": 1033}

    summary = {name: {
        "label": f"{name} (Qwen2.5-Coder-0.5B-Instruct + LoRA adapter r16 v{i})",
        "kind": "model", "n": 1033, "errors": 1033, "escalation_rate": 0.25,
        "metrics": {m: metric(m) for m in METRICS},
        "latency_ms": {"ttft_p50": 1234.0, "ttft_p95": 12345.0, "total_p50": 2345.0,
                       "total_p95": 23456.0},
        "tokens": {"prompt": 1_234_567, "completion": 123_456},
        "cost": {"local_per_1k": 0.01234, "fully_per_1k": 0.1234, "llm_equiv_per_1k": 12.34,
                 "ratio": 1234.5, "ratio_fully": 123.4, "spent_per_1k": 1.234,
                 "per_correct": 0.01234, "fully_per_correct": 0.1234, "correct": 900,
                 "correct_metric": "success", "unpriced": 0, "energy_unmeasured": 0},
    } for i, name in enumerate(SYSTEMS)}
    return {"run_id": "01a24edf06a798f84c7acf", "n_tasks": 1033, "rows": [],
            "meta": {"suite": "stdlib-refactor", "seed": 0, "limit": None, "notes": []},
            "summary": summary}


def summary_table(page: str) -> str:
    match = re.search(r"<div class='wide'><table class='summary'>.*?</table></div>", page)
    assert match, "the summary table sits in its own scrolling box"
    return match.group(0)


def test_the_summary_table_scrolls_in_its_own_box_with_compact_cells():
    page = report.html(wide_result())
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert ".wide{overflow-x:auto" in css
    assert re.search(r"table\.summary\{font-size:13px\}", css)
    table = summary_table(page)
    header = table[:table.index("</tr>")]
    # system, the eight metrics, then ttft, total, $/1k, LLM-equivalent, ratio, $/correct,
    # errors: marginal and fully loaded share a cell.
    assert header.count("<th>") == 1 + len(METRICS) + 7
    assert "<td>$0.0123<br>$0.1234</td>" in table
    assert "<td>1234.5×<br>123.4×</td>" in table


def test_the_summary_fits_a_1300_pixel_window_in_chromium(tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (scripts/install-code-server.sh installs it)"
    page = report.html(wide_result())
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "eval-report-1300.png"
    shot.unlink(missing_ok=True)
    # A measuring copy: the report itself has no scripts.
    probe = ("<script>const t = document.querySelector('table.summary');"
             "document.title = ['page', document.documentElement.scrollWidth,"
             "'view', document.documentElement.clientWidth,"
             "'table', Math.ceil(t.getBoundingClientRect().right)].join(' ');</script>")
    measured = tmp_path / "measured.html"
    measured.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    plain = tmp_path / "report.html"
    plain.write_text(page, encoding="utf-8")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
             "--window-size=1300,900"]
    dom = subprocess.run([*flags, "--dump-dom", measured.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    title = re.search(r"<title>page (\d+) view (\d+) table (\d+)</title>", dom)
    assert title, dom[:500]
    page_width, view_width, table_right = map(int, title.groups())
    assert page_width <= view_width, "the page scrolls sideways"
    assert table_right <= view_width, "the summary table runs off the right edge"
    subprocess.run([*flags, f"--screenshot={shot}", plain.as_uri()], check=True,
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
