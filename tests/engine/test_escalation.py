"""Small-model-first escalation against the real engine, with a fake OpenAI-compatible server
as the baseline (it counts what reaches it)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from helpers.calls import Collect
from helpers.fake_openai import FakeOpenAI
from helpers.net import dead_url

from covey_specialists import routing
from covey_specialists.baseline import BaselineClient, BaselineConfig
from covey_specialists.client import EngineClient
from covey_specialists.table import load_table
from covey_specialists.tasks.completion import CompletionContext, completion_prompt

pytestmark = pytest.mark.engine

PROMPT = completion_prompt(CompletionContext("def add(a, b):\n    return", "\n"), "prefix", 3000)


def spec(policy, **fields):
    base = load_table().for_task("completion")
    # the untuned base: these tests are about routing, and any engine serves it
    # a generous timeout: on a loaded machine the shipped 10 s turns answers into timeouts;
    # tokens enough for the line to end (a line cut off is not served)
    return dataclasses.replace(base, **{"routing": policy, "max_tokens": 32, "adapter": "",
                                        "prompt_format": "prefix", "timeout_s": 120.0,
                                        **fields})


async def run(engine_url, key, specialist, baseline_url, *, validate=None, reply=" a + b"):
    sink = Collect()
    engine = EngineClient(engine_url, key, sink=sink, client_name="test")
    baseline = (BaselineClient(BaselineConfig(url=baseline_url, model="gpt-4.1", api="chat",
                                              max_retries=0), sink=sink, client_name="test")
                if baseline_url else None)
    try:
        routed = await routing.answer(specialist, PROMPT, engine=engine, baseline=baseline,
                                         validate=validate, language="python")
    finally:
        await engine.aclose()
        if baseline:
            await baseline.aclose()
    return routed, sink


def rejects(text):
    return "does not parse"


async def test_never_sends_nothing_to_the_baseline_even_for_bad_answers(engine):
    with FakeOpenAI(" a + b") as fake:
        routed, sink = await run(engine.url, engine.api_key, spec("never"), fake.url,
                                 validate=rejects)
    assert fake.requests == []
    assert routed.source == "specialist" and not routed.decision.escalate
    assert [c.status for c in sink.calls] == ["ok"] and sink.calls[0].source == "specialist"
    assert sink.calls[0].mean_logprob is None  # not asked for: the policy does not read them


async def test_invalid_answer_escalates_and_both_calls_are_logged(engine):
    with FakeOpenAI("```python\na + b\n```") as fake:
        routed, sink = await run(engine.url, engine.api_key, spec("on-failure"), fake.url,
                                 validate=lambda t: None if t == "a + b" else "does not parse")
    assert len(fake.requests) == 1
    assert routed.source == "baseline" and routed.text == "a + b"  # chat fences removed
    assert routed.decision.reason == "invalid: does not parse"
    (specialist,), (baseline,) = sink.by_source("specialist"), sink.by_source("baseline")
    assert specialist.status == "escalated" and "does not parse" in specialist.error
    assert specialist.completion_tokens > 0  # its own cost stays in the log
    assert baseline.status == "ok" and baseline.prompt_tokens == 100
    assert routed.call is baseline and routed.ok


async def test_valid_answer_stays_local_under_on_failure(engine):
    with FakeOpenAI() as fake:
        routed, sink = await run(engine.url, engine.api_key, spec("on-failure"), fake.url,
                                 validate=lambda t: None)
    assert fake.requests == [] and routed.source == "specialist"
    assert [c.status for c in sink.calls] == ["ok"]


async def test_the_engine_streams_a_logprob_for_every_token(engine):
    """What holds for any output: asked for log-probs, the engine sends one per generated
    token, each at most 0, so the call's mean and minimum are set and ordered. (How the
    router reads them is tested on scripted log-probs in tests/unit/test_stream_mechanics.py.)
    ``ignore_eos`` and no stop sequences make sure the model generates something."""
    async with EngineClient(engine.url, engine.api_key, sink=Collect()) as client:
        result = await client.complete(spec("on-low-confidence"), PROMPT, logprobs=True,
                                       max_tokens=6, extra_body={"ignore_eos": True,
                                                                 "stop": []})
    call = result.call
    assert result.ok, call.error
    assert call.completion_tokens > 0
    assert call.mean_logprob is not None and call.min_logprob <= call.mean_logprob <= 0


async def test_engine_down_escalates(engine):
    with FakeOpenAI(" a + b") as fake:
        routed, sink = await run(dead_url(), "", spec("on-failure"), fake.url)
    assert routed.source == "baseline" and routed.decision.reason == "specialist error"
    assert sink.by_source("specialist")[0].status == "escalated"
    assert "unreachable" in sink.by_source("specialist")[0].error


async def test_timeout_escalates(engine):
    with FakeOpenAI(" a + b") as fake:
        routed, _ = await run(engine.url, engine.api_key, spec("on-failure", timeout_s=0.001),
                              fake.url)
    assert routed.decision.reason == "specialist timeout" and routed.source == "baseline"


async def test_dead_baseline_serves_a_valid_specialist_answer(engine):
    specialist = spec("on-low-confidence", min_mean_logprob=0.0)  # always unsure
    routed, sink = await run(engine.url, engine.api_key, specialist, dead_url(),
                             validate=lambda t: None)
    assert routed.decision.escalate and routed.source == "specialist" and routed.text
    statuses = {c.source: c.status for c in sink.calls}
    assert statuses == {"specialist": "ok", "baseline": "error"}


async def test_dead_baseline_and_invalid_answer_serve_nothing(engine):
    routed, sink = await run(engine.url, engine.api_key, spec("on-failure"), dead_url(),
                             validate=rejects)
    assert routed.source == "none" and routed.text == "" and not routed.ok
    specialist = sink.by_source("specialist")[0]
    assert (specialist.status, specialist.error) == ("invalid", "does not parse")
    assert "specialist does not parse" in routed.why and "baseline" in routed.why


async def test_invalid_baseline_answer_is_not_served(engine):
    with FakeOpenAI("garbage") as fake:
        routed, _ = await run(engine.url, engine.api_key, spec("on-failure"), fake.url,
                              validate=rejects)
    assert len(fake.requests) == 1 and routed.source == "none"
    assert routed.baseline_invalid_reason == "does not parse"


async def test_always_baseline_does_not_ask_the_specialist(engine):
    with FakeOpenAI(" a + b") as fake:
        routed, sink = await run(dead_url(), "", spec("always-baseline"), fake.url)
    assert routed.source == "baseline" and routed.text == " a + b"
    assert [c.source for c in sink.calls] == ["baseline"]


async def test_always_baseline_falls_back_to_the_specialist_when_the_baseline_is_dead(engine):
    routed, sink = await run(engine.url, engine.api_key, spec("always-baseline"), dead_url(),
                             validate=lambda t: None)
    assert routed.source == "specialist" and routed.text
    assert {c.source: c.status for c in sink.calls} == {"baseline": "error", "specialist": "ok"}


async def test_no_baseline_configured_keeps_the_specialist(engine):
    routed, sink = await run(engine.url, engine.api_key, spec("on-failure"), None,
                             validate=rejects)
    assert routed.decision.escalate and routed.source == "none"
    assert "no baseline configured" in routed.notes[0]
    assert [c.status for c in sink.calls] == ["invalid"]


async def test_cancellation_reports_the_specialist_call_once(engine):
    with FakeOpenAI(" a + b") as fake:
        sink = Collect()
        client = EngineClient(engine.url, engine.api_key, sink=sink)
        baseline = BaselineClient(BaselineConfig(url=fake.url, model="m"), sink=sink)
        task = asyncio.ensure_future(routing.answer(
            spec("on-failure", max_tokens=200), PROMPT, engine=client, baseline=baseline))
        await asyncio.sleep(0)  # the specialist's request is on its way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()
        await baseline.aclose()
    assert [c.status for c in sink.calls] == ["cancelled"] and fake.requests == []
