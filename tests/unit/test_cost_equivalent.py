"""The LLM-equivalent tokens of a specialist's call are reckoned where calls are routed, not
in the engine client: the router sets the baseline's own request and answer on the call
before it is reported; the client only streams, times and counts."""

from __future__ import annotations

import dataclasses

from helpers.calls import Collect
from helpers.fake_openai import FakeOpenAI

from covey_specialists import routing
from covey_specialists.client import EngineClient
from covey_specialists.table import load_table
from covey_specialists.tasks import llm_equivalent_tokens
from covey_specialists.tasks.completion import CompletionContext, completion_prompt

PROMPT = completion_prompt(CompletionContext("def add(a, b):\n", "", multiline=True),
                           "prefix", 2000)


def spec():
    return dataclasses.replace(load_table().for_task("completion"), adapter="",
                               prompt_format="prefix", stop=(), routing="never")


async def test_a_routed_call_is_reported_with_the_baselines_tokens(covey_home):
    with FakeOpenAI(script=["    return a + b\n"]) as fake:
        sink = Collect()
        async with EngineClient(fake.url, sink=sink) as client:
            routed = await routing.answer(spec(), PROMPT, engine=client, baseline=None)
    [reported] = sink.calls
    assert reported is routed.call and routed.text.startswith("    return a + b")
    expected = llm_equivalent_tokens(spec(), PROMPT, routed.text)
    assert (reported.llm_prompt_tokens, reported.llm_completion_tokens) == expected
    assert expected[0] > 0 and expected != (reported.prompt_tokens, reported.completion_tokens)


async def test_the_engine_client_alone_does_not_price(covey_home):
    with FakeOpenAI(script=["    return a + b\n"]) as fake:
        sink = Collect()
        async with EngineClient(fake.url, sink=sink) as client:
            result = await client.complete(spec(), PROMPT)
    assert result.ok and sink.calls == [result.call]
    assert result.call.llm_prompt_tokens is None and result.call.llm_completion_tokens is None
