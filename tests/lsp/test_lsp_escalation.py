"""Escalation through the language server: the real engine as the specialist, a fake
OpenAI-compatible server as the configured baseline. The editor learns where each answer
came from through ``covey/callFinished`` (``source``)."""

from __future__ import annotations

import asyncio

import pytest
from helpers.fake_openai import FakeOpenAI
from helpers.lsp_client import (
    PY_SOURCE,
    apply_workspace_edit,
    end_of,
    engine_options,
    inline_params,
    open_doc,
    start_client,
    stop_client,
)
from lsprotocol import types

pytestmark = pytest.mark.engine


async def _client(engine, fake, routing: dict, task: str = "completion"):
    options = engine_options(engine, specialists={task: routing})
    if task == "completion":
        options["specialists"]["completion"].update(promptFormat="prefix", maxTokens=8)
    options["baseline"] = {"url": fake.url, "model": "gpt-4.1"}
    return await start_client(options, env={"COVEY_ENGINE_API_KEY": engine.api_key})


async def _finished(client, count: int) -> list:
    for _ in range(100):  # notifications follow the response; wait for them to arrive
        if len(client.calls) >= count:
            break
        await asyncio.sleep(0.05)
    return client.calls


async def test_unsure_completion_comes_from_the_baseline_and_the_editor_is_told(engine):
    with FakeOpenAI("fibonacci(n - 1) + fibonacci(n - 2)") as fake:
        client = await _client(engine, fake, {"routing": "on-low-confidence",
                                              "minMeanLogprob": 0.0})  # always unsure
        try:
            uri = "file:///tmp/fib.py"
            open_doc(client, uri, PY_SOURCE)
            line, char = end_of(PY_SOURCE, "return n\n    return ")
            result = await client.text_document_inline_completion_async(
                inline_params(uri, line, char))
            calls = await _finished(client, 2)
        finally:
            await stop_client(client)
    assert len(fake.requests) == 1
    asked = fake.requests[0]["body"]["messages"][1]["content"]
    assert "def fibonacci(n):" in asked and "<CURSOR>\n\n\ndef total(items):" in asked
    (item,) = result.items
    assert item.insert_text == "fibonacci(n - 1) + fibonacci(n - 2)"
    by_source = {c.source: c for c in calls}
    assert by_source["specialist"].status == "escalated"
    assert by_source["baseline"].status == "ok" and by_source["baseline"].llmCostUsd > 0
    assert list(item.command.arguments) == [by_source["baseline"].callId]  # accepting: its call


async def test_docstring_under_always_baseline_skips_the_engine(engine):
    with FakeOpenAI("Return the area of a circle of the given radius.") as fake:
        client = await _client(engine, fake, {"routing": "always-baseline"}, task="doc")
        try:
            uri = "file:///tmp/area.py"
            open_doc(client, uri, PY_SOURCE)
            line = PY_SOURCE.splitlines().index("def circle_area(radius):")
            result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="covey.generateDocstring", arguments=[uri, line]))
            calls = await _finished(client, 1)
            edits = list(client.applied_edits)
        finally:
            await stop_client(client)
    assert result["applied"] is True
    assert [(c.source, c.status) for c in calls] == [("baseline", "ok")]
    new_text = apply_workspace_edit(PY_SOURCE, edits[-1], uri)
    assert 'def circle_area(radius):\n    """Return the area of a circle of the given ' \
           'radius."""\n' in new_text


async def test_policy_never_sends_nothing_to_a_configured_baseline(engine):
    with FakeOpenAI("should never be asked") as fake:
        client = await _client(engine, fake, {"routing": "never"})
        try:
            uri = "file:///tmp/fib.py"
            open_doc(client, uri, PY_SOURCE)
            line, char = end_of(PY_SOURCE, "return n\n    return ")
            await client.text_document_inline_completion_async(inline_params(uri, line, char))
            calls = await _finished(client, 1)
        finally:
            await stop_client(client)
    assert fake.requests == []
    assert [c.source for c in calls] == ["specialist"]
