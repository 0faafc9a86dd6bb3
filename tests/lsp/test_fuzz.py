"""The language server survives hostile input: benchmarks/fuzz_lsp.py with 500 messages.

No model is needed (the engine URL is a closed port). Asserts no crash and no hang; timing
is reported by the benchmark, not asserted.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

from covey_server.app import MAX_MESSAGE_BYTES, OVERSIZED, BoundedInput

FUZZ = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_lsp.py"


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_lsp", FUZZ)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_500_hostile_messages_no_crash_no_hang():
    report = _fuzz_module().fuzz(n=500, seed=1, probe_every=20, hang_s=10.0, max_s=300)
    summary = report.summary()
    assert report.sent == 500, summary
    assert report.crashes == 0, summary["crash_notes"]
    assert report.hangs == 0, summary
    assert report.probes >= 25 and len(report.answer_s) == report.probes


def test_an_announced_huge_body_is_not_read():
    raw = io.BytesIO(b"x" * 100 + b"\r\nContent-Length: 2\r\n\r\n{}")
    stdin = BoundedInput(raw)
    assert stdin.read(MAX_MESSAGE_BYTES + 1) == OVERSIZED
    assert stdin.read(10 ** 14) == OVERSIZED
    assert raw.tell() == 0  # nothing consumed: the bytes are skipped as header noise
    assert stdin.readline().endswith(b"\r\n")
