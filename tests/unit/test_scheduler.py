"""Latest wins per document, every request is answered, client cancellation propagates."""

from __future__ import annotations

import asyncio

import pytest

from covey_server.scheduler import Scheduler


async def test_newer_request_supersedes_and_older_is_answered_none():
    sched = Scheduler(debounce_s=0)
    started, cancelled = [], []

    async def work(name):
        started.append(name)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return name

    async def quick():
        return "second"

    first = asyncio.ensure_future(sched.run("doc", lambda: work("first")))
    await asyncio.sleep(0.01)  # first is running its work
    second = await sched.run("doc", quick)
    assert await first is None  # answered, empty
    assert second == "second"
    assert cancelled == ["first"], "the superseded work was cancelled (its stream closed)"
    assert sched.superseded == 1


async def test_debounce_skips_work_for_superseded_requests():
    sched = Scheduler(debounce_s=0.05)
    calls = []

    async def work(n):
        calls.append(n)
        return n

    results = await asyncio.gather(*(sched.run("doc", lambda n=n: work(n)) for n in range(5)))
    assert results == [None, None, None, None, 4]
    assert calls == [4], "only the latest request reached the model"


async def test_documents_are_independent():
    sched = Scheduler(debounce_s=0.01)

    async def work(v):
        return v

    a, b = await asyncio.gather(sched.run("a", lambda: work(1)), sched.run("b", lambda: work(2)))
    assert (a, b) == (1, 2)


async def test_stale_version_after_debounce_is_dropped():
    sched = Scheduler(debounce_s=0.01)
    calls = []

    async def work():
        calls.append(1)
        return "x"

    assert await sched.run("doc", work, still_current=lambda: False) is None
    assert calls == []


async def test_client_cancellation_propagates_and_stops_the_work():
    sched = Scheduler(debounce_s=0)
    cancelled = asyncio.Event()

    async def work():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    request = asyncio.ensure_future(sched.run("doc", work))
    await asyncio.sleep(0.01)
    request.cancel()  # what pygls does on $/cancelRequest
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_cancel_key_answers_pending_request():
    sched = Scheduler(debounce_s=5)

    async def work():
        return "never"

    request = asyncio.ensure_future(sched.run("doc", work))
    await asyncio.sleep(0.01)
    sched.cancel("doc")
    assert await request is None
