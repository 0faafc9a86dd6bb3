#!/usr/bin/env python3
"""Print real NVML energy readings on an NVIDIA host, the way the usage log takes them.

    python scripts/nvml_energy_probe.py                 # counter readings, idle windows
    python scripts/nvml_energy_probe.py --url URL --key KEY --requests 5
                                                        # energy of real engine requests

Without ``--url`` it reads ``nvmlDeviceGetTotalEnergyConsumption`` for each GPU, then
measures a few back-to-back windows (with a CUDA matmul load when torch can use the GPU)
and shows how two overlapping windows would split the energy. With ``--url`` it sends
real completions through the engine client into a temporary usage log and prints each
row's energy, engine seconds and cost.

Exit status: 0 when it measured, 3 when this host has no NVML (no NVIDIA GPU or driver),
in which case Covey records the device as ``cpu``.
"""

# ruff: noqa: T201 -- a command-line probe: printing is its output

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from covey_usage.calls import ModelCall
from covey_usage.cost import CostStage, load_prices
from covey_usage.energy import Meter, NvmlEnergy


def open_gpu() -> NvmlEnergy | None:
    try:
        import pynvml
    except ImportError as exc:
        print(f"No NVML here: pynvml is not installed ({exc}).")
        return None
    try:
        return NvmlEnergy(pynvml)
    except Exception as exc:  # LibraryNotFound, DriverNotLoaded, NotSupported, no GPU
        print(f"No NVML here: {type(exc).__name__}: {exc}.")
        return None


def gpu_load():
    """A function that keeps the GPU busy for a moment, or None without CUDA torch."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    a = torch.randn(4096, 4096, device="cuda")

    def work(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            a @ a
        torch.cuda.synchronize()
    return work


def probe_windows(meter: Meter, windows: int, seconds: float) -> None:
    work = gpu_load()
    print(f"load during windows: {'CUDA matmul' if work else 'none (idle GPU)'}")
    for i in range(windows):
        t0 = time.time()
        e0 = meter.gpu.read()
        if work and i % 2 == 1:
            work(seconds)
        else:
            time.sleep(seconds)
        e1, t1 = meter.gpu.read(), time.time()
        print(f"window {i}: {e1 - e0:9.2f} J over {t1 - t0:.2f} s = {(e1 - e0) / (t1 - t0):7.1f} W"
              f"{'  (loaded)' if work and i % 2 == 1 else ''}")
    # Two overlapping synthetic calls through the real cost stage and real readings.
    meter.start()
    start = time.time()
    if work:
        work(2 * seconds)
    else:
        time.sleep(2 * seconds)
    meter.sample()
    calls = [ModelCall(id="a", task="completion", specialist="s", model="m", adapter="",
                       base_model="", engine_url="http://127.0.0.1:1", started_at=start,
                       latency_ms=2000 * seconds, prompt_tokens=300, completion_tokens=100),
             ModelCall(id="b", task="completion", specialist="s", model="m", adapter="",
                       base_model="", engine_url="http://127.0.0.1:1",
                       started_at=start + seconds / 2, latency_ms=1000 * seconds,
                       prompt_tokens=100, completion_tokens=100)]
    stage = CostStage(load_prices(), meter, settle_s=0)
    for call in calls:
        stage.add(call)
    total = meter.timeline.usage(start, start + 2 * seconds, "energy_j")
    for call in stage.ready(force=True):
        local = ("unpriced" if call.local_cost_usd is None
                 else f"${call.local_cost_usd:.8f} local")
        print(f"call {call.id}: {call.energy_j:.2f} J, {call.engine_seconds:.2f} s engine, "
              f"{local}")
    print(f"both calls together: {sum(c.energy_j for c in calls):.2f} J; "
          f"counter over the same time: {total:.2f} J")


async def probe_requests(meter: Meter, url: str, key: str, requests: int) -> None:
    import sqlite_utils

    from covey_specialists.client import EngineClient
    from covey_specialists.table import load_table
    from covey_specialists.tasks.doc import doc_prompt
    from covey_usage import open_usage_log

    path = Path(tempfile.mkdtemp()) / "usage.db"
    log = open_usage_log(path, meter=meter, settle_s=0.5)
    spec = load_table().for_task("doc")
    client = EngineClient(url, key, sink=log)
    code = "def mean(values):\n    return sum(values) / len(values)\n"
    try:
        for _ in range(requests):
            await client.complete(spec, doc_prompt(code, "python", 2000), max_tokens=64)
    finally:
        await client.aclose()
        log.close()
    for row in sqlite_utils.Database(path).query(
            "SELECT status, prompt_tokens, completion_tokens, latency_ms, energy_j, "
            "engine_seconds, device, local_cost_usd, llm_cost_usd FROM calls"):
        print(row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an engine to send requests to")
    parser.add_argument("--key", default="", help="its API key")
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()

    gpu = open_gpu()
    if gpu is None:
        print("This host has no NVIDIA GPU energy counter, so nothing was measured. "
              "The usage log records the device as 'cpu' here.")
        return 3
    print(f"device: {gpu.device}")
    for i, handle in enumerate(gpu._handles):
        mj = gpu._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        print(f"GPU {i}: total energy since driver load {mj / 1e3:,.1f} J")
    meter = Meter(gpu=gpu, interval_s=0.05)
    try:
        if args.url:
            asyncio.run(probe_requests(meter, args.url, args.key, args.requests))
        else:
            probe_windows(meter, args.windows, args.seconds)
    finally:
        meter.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
