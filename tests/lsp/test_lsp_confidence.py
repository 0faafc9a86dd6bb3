"""Showing less when unsure: with ``min_show_logprob`` set, the server asks the engine for
log-probs and withholds a completion whose mean token log-prob is below it. The engine is a
scripted fake, so the confidence of each answer is known; the usage row (through
``covey/callFinished``) still records the call, with status ``withheld``."""

from __future__ import annotations

import asyncio

import pytest_asyncio
from helpers.fake_openai import FakeOpenAI, Scripted
from helpers.lsp_client import PY_SOURCE, end_of, inline_params, open_doc, start_client, stop_client

ANSWER = ["fib", "onacci(n - 1)", " + fibonacci(n - 2)"]
THRESHOLD = -1.0


@pytest_asyncio.fixture
async def filtered():
    """A server whose completion specialist withholds answers below THRESHOLD."""
    with FakeOpenAI("unused") as fake:
        c = await start_client({"engine": {"url": fake.url}, "debounceMs": 10,
                                "specialists": {"completion": {"minShowLogprob": THRESHOLD}}})
        c.fake = fake
        yield c
        await stop_client(c)


async def _complete(client, logprobs: list[float]):
    client.fake.by_model["completion"] = Scripted(tokens=ANSWER, logprobs=logprobs)
    uri = "file:///tmp/fib.py"
    open_doc(client, uri, PY_SOURCE)
    line, char = end_of(PY_SOURCE, "return n\n    return ")
    result = await client.text_document_inline_completion_async(inline_params(uri, line, char))
    for _ in range(100):  # the notification follows the response
        if client.calls:
            break
        await asyncio.sleep(0.05)
    return result


async def test_a_confident_completion_is_shown(filtered):
    result = await _complete(filtered, [-0.1, -0.2, -0.3])  # mean −0.2 ≥ −1
    (item,) = result.items
    assert item.insert_text == "".join(ANSWER)
    (request,) = filtered.fake.completions()
    assert request.body["logprobs"] == 1  # asked for, since a threshold is set
    (call,) = filtered.calls
    assert call.status == "ok"


async def test_an_unsure_completion_is_withheld_and_its_call_recorded(filtered):
    result = await _complete(filtered, [-0.5, -2.5, -3.0])  # mean −2 < −1
    assert list(result.items) == []
    (call,) = filtered.calls
    assert call.status == "withheld"
    assert filtered.fake.completions()[0].body["logprobs"] == 1


async def test_without_a_threshold_no_logprobs_are_asked_and_all_is_shown():
    """``"-inf"`` turns the shipped filter off (editor settings are JSON: no infinity)."""
    with FakeOpenAI("unused") as fake:
        client = await start_client({"engine": {"url": fake.url}, "debounceMs": 10,
                                     "specialists": {"completion": {"minShowLogprob": "-inf"}}})
        client.fake = fake
        try:
            result = await _complete(client, [-5.0, -6.0, -7.0])
        finally:
            await stop_client(client)
    (item,) = result.items
    assert item.insert_text == "".join(ANSWER)
    assert "logprobs" not in fake.completions()[0].body
