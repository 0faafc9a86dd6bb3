"""How much the usage log adds to a model call on the server path, and how fast it writes.

Prints figures; asserts nothing about time.

- ``record()`` latency, p50/p95/p99/max. This is what the server's event loop pays per
  call, measured while the writer thread is busy writing the earlier calls. Target: p95
  under 0.5 ms.
- Writer throughput: rows per second from the first ``record()`` until ``flush()``
  returns, with cost attribution and one transaction per batch.

Run: python benchmarks/bench_usage.py [--calls 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from covey_usage import open_usage_log
from covey_usage.calls import ModelCall, new_call_id
from covey_usage.energy import Meter


def make_call(i: int, n: int, now: float) -> ModelCall:
    # 300 ms calls started every 50 ms: about six in flight at once, as in a busy editor
    return ModelCall(
        id=new_call_id(), task="completion", specialist="completion", model="completion",
        adapter="builtin:completion", base_model="smol", engine_url="http://127.0.0.1:8733",
        client="editor", language="python", started_at=now - 0.35 - (n - i) * 0.05,
        prompt_tokens=400, completion_tokens=24, ttft_ms=90.0, latency_ms=300.0,
        prompt_text="x" * 1500, completion_text="y" * 80,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run(label: str, calls: int, *, meter, store_text: bool, pace_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = open_usage_log(Path(tmp) / "usage.db", store_text=store_text, meter=meter,
                             settle_s=0.0)
        now = time.time()
        batch = [make_call(i, calls, now) for i in range(calls)]
        costs = []
        started = time.perf_counter()
        for call in batch:
            t0 = time.perf_counter_ns()
            log.record(call)
            costs.append((time.perf_counter_ns() - t0) / 1e6)
            if pace_s:
                time.sleep(pace_s)
        log.flush(timeout=600)
        elapsed = time.perf_counter() - started
        log.close()
        assert log.stats.written == calls, log.stats
    print(f"{label:<42} record() ms p50 {statistics.median(costs):.4f}  "
          f"p95 {pct(costs, 95):.4f}  p99 {pct(costs, 99):.4f}  max {max(costs):.3f}   "
          f"writer {calls / elapsed:,.0f} rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    host = Meter.for_host()
    print(f"device: {host.device}; energy counter: {'yes' if host.measures_energy else 'no'}")
    host.stop()
    run("burst, no meter, hashes only", args.calls, meter=False, store_text=False, pace_s=0)
    run("burst, no meter, text stored", args.calls, meter=False, store_text=True, pace_s=0)
    run("burst, host meter (10 Hz sampler)", args.calls, meter=True, store_text=False,
        pace_s=0)
    # An editor makes a few calls a second; record() cost while the writer keeps up.
    run("paced 1 call/ms, host meter", min(args.calls, 3000), meter=True, store_text=False,
        pace_s=0.001)


if __name__ == "__main__":
    main()
