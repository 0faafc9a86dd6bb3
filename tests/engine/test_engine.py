"""Integration tests against the real vLLM engine (started once per session)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import pytest
from click.testing import CliRunner
from helpers.engine_metrics import metric, wait_until_idle

from covey_cli import main
from covey_specialists.client import EngineClient
from covey_specialists.table import load_table
from covey_specialists.tasks.completion import CompletionContext, completion_prompt
from covey_specialists.tasks.doc import doc_prompt
from covey_specialists.tasks.refactor import refactor_prompt

pytestmark = pytest.mark.engine


def _prompt_for(task: str, fmt: str):
    if task == "completion":
        ctx = CompletionContext(prefix="def add(a, b):\n    return ", suffix="\n", multiline=False)
        return completion_prompt(ctx, fmt, 2000)
    if task == "doc":
        return doc_prompt("def add(a, b):\n    return a + b\n", "python", 2000)
    return refactor_prompt("xs = []\nfor i in range(3):\n    xs.append(i)\n",
                           "Use a list comprehension.", "python", 2000)


def test_status_json_lists_base_and_every_specialist(engine):
    result = CliRunner().invoke(main, ["engine", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["state"] in ("up", "remote")
    assert "base" in status["models"]
    table = load_table()
    assert set(status["specialists"]) == set(table.specialists)
    for key, entry in status["specialists"].items():
        assert entry["served"], f"specialist {key} ({entry['model']}) is not served"


def test_engine_listens_on_loopback_only(engine):
    port = int(engine.url.rsplit(":", 1)[1])
    with open("/proc/net/tcp") as fh:
        listening = [line.split() for line in fh.readlines()[1:]]
    local = {row[1] for row in listening
             if row[3] == "0A" and int(row[1].split(":")[1], 16) == port}
    assert local == {f"0100007F:{port:04X}"}, local  # 127.0.0.1 only, nothing on 0.0.0.0


def test_request_without_key_is_refused(engine):
    assert httpx.get(f"{engine.url}/v1/models", timeout=5).status_code == 401
    wrong = httpx.get(f"{engine.url}/v1/models", headers={"Authorization": "Bearer nope"},
                      timeout=5)
    assert wrong.status_code == 401
    right = httpx.get(f"{engine.url}/v1/models",
                      headers={"Authorization": f"Bearer {engine.api_key}"}, timeout=5)
    assert right.status_code == 200


async def test_each_specialist_answers(engine):
    table = load_table()
    async with EngineClient(engine.url, engine.api_key) as client:
        for spec in table.specialists.values():
            result = await client.complete(spec, _prompt_for(spec.task, spec.prompt_format),
                                           max_tokens=16)
            assert result.ok, (spec.key, result.call.error)
            assert result.call.model == spec.served_name
            assert result.call.completion_tokens > 0
            assert result.call.prompt_tokens > 0
            assert result.call.ttft_ms is not None and result.call.latency_ms >= result.call.ttft_ms


def _generated(engine) -> float:
    return metric(engine, "vllm:generation_tokens_total")


async def test_cancelling_a_long_generation_stops_the_engine(engine):
    """Closing the stream must abort generation: count tokens via /metrics, not time.

    A request that is not aborted runs to exactly ``limit`` tokens (``ignore_eos``), so
    the count tells an abort from a finished request on any CPU, fast or slow."""
    # the request must outlive any wait for its first tokens on a busy machine: the
    # specialist's own 10 s timeout would end it first, and nothing would be left to cancel
    spec = dataclasses.replace(load_table().for_task("completion"), timeout_s=600.0)
    ctx = CompletionContext(prefix="def add(a, b):\n", suffix="", multiline=True)
    prompt = completion_prompt(ctx, spec.prompt_format, 2000)  # a block: read to the end
    limit = 1900  # the model's window is 2,048 tokens
    await wait_until_idle(engine, 60)  # nothing left over from an earlier test counts as ours
    before = _generated(engine)
    async with EngineClient(engine.url, engine.api_key) as client:
        task = asyncio.create_task(client.complete(
            spec, prompt, max_tokens=limit, extra_body={"ignore_eos": True, "stop": []}))
        deadline = asyncio.get_running_loop().time() + 120
        while _generated(engine) - before < 5 and not task.done():
            assert asyncio.get_running_loop().time() < deadline, "no tokens in 120 s"
            await asyncio.sleep(0.05)
        assert not task.done(), f"the request ended before the cancel: {task.result().call}"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await wait_until_idle(engine, 120)  # ample for all ``limit`` tokens if the abort were lost
    settled = _generated(engine)
    await asyncio.sleep(1.0)
    assert _generated(engine) == settled, "the engine kept generating when idle"
    assert settled - before < limit, f"the request ran to its end: {settled - before} tokens"


def test_engine_up_refuses_a_second_instance(engine):
    if not engine.managed and "8733" not in engine.url:
        pytest.skip("engine is external")
    result = CliRunner().invoke(main, ["engine", "up"])
    assert result.exit_code == 1
    assert "already up" in result.output


async def test_a_file_of_numbers_is_cut_to_the_engines_context(engine):
    """3,000 characters of a number table are more tokens than the model's window: the
    engine refuses the prompt as built, and the client that knows the window cuts it."""
    spec = load_table().for_task("completion")
    table = "".join(f"    0x{i:04x}: {i * 7919 % 100003},\n" for i in range(400))
    ctx = CompletionContext(prefix=table + "}\n\ndef lookup(code):\n    return ",
                            suffix="\n", multiline=False)
    prompt = completion_prompt(ctx, spec.prompt_format, spec.max_prompt_chars)
    async with EngineClient(engine.url, engine.api_key) as client:
        refused = await client.complete(spec, prompt)
        assert refused.call.status == "error" and "context length" in refused.call.error

        await client.models()  # learns the window
        answered = await client.complete(spec, prompt)

    assert answered.ok, answered.call.error
    window = client.window.max_model_len
    assert answered.call.prompt_tokens + 40 <= window  # room for a whole one-line answer
    assert answered.call.prompt_tokens > window / 2
    assert answered.prompt.meta["prefix"].endswith("def lookup(code):\n    return ")
