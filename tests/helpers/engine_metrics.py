"""The real engine's own counters and gauges (``/metrics``), for tests that must know what
it generated or whether it is still busy without timing anything."""

from __future__ import annotations

import asyncio

import httpx


def metric(engine, name: str, **labels) -> float:
    """Sum of a Prometheus counter or gauge from the engine's /metrics, over matching
    label sets."""
    body = httpx.get(f"{engine.url}/metrics", timeout=5,
                     headers={"Authorization": f"Bearer {engine.api_key}"}).text
    total = 0.0
    for line in body.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _poll(done, timeout: float, failure: str) -> None:
    """Check ``done()`` every 50 ms until it holds; AssertionError(failure) after timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(failure)


async def wait_until_generating(engine, timeout: float = 20.0) -> None:
    await _poll(lambda: metric(engine, "vllm:num_requests_running") > 0, timeout,
                "the engine never started generating")


async def wait_until_idle(engine, timeout: float = 20.0) -> None:
    """Until the engine's scheduler neither runs nor queues a request."""
    await _poll(lambda: not (metric(engine, "vllm:num_requests_running")
                             + metric(engine, "vllm:num_requests_waiting")),
                timeout, f"the engine is still busy after {timeout:g}s")
