"""The engine client's stream mechanisms, against a fake engine that streams scripted
tokens: a one-line completion stops reading at the end of its line, cancelling closes the
stream, and low confidence comes from the streamed log-probs. The real engine cannot be
made to say a given thing; tests/engine checks what holds for any output."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from helpers.calls import Collect
from helpers.fake_openai import FakeOpenAI, Scripted

from covey_specialists import routing
from covey_specialists.baseline import BaselineClient, BaselineConfig
from covey_specialists.client import EngineClient
from covey_specialists.table import load_table
from covey_specialists.tasks.completion import LINE_MAX_TOKENS, CompletionContext, completion_prompt

ONE_LINE = completion_prompt(CompletionContext("import os\n\n\ndef main():\n    path = ", "\n",
                                               multiline=False), "prefix", 2000)
BLOCK = completion_prompt(CompletionContext("def add(a, b):\n", "", multiline=True), "prefix",
                          2000)


def spec(**fields):
    base = load_table().for_task("completion")
    return dataclasses.replace(base, **{"adapter": "", "prompt_format": "prefix", "stop": (),
                                        "max_tokens": 20_000, "timeout_s": 60.0, **fields})


async def test_one_line_completion_closes_the_stream_after_its_line(covey_home):
    answer = Scripted(tokens=[" os", ".getcwd", "()", "\n"], endless="    x = 1")
    with FakeOpenAI(script=[answer]) as fake:
        sink = Collect()
        async with EngineClient(fake.url, sink=sink) as client:
            result = await client.complete(spec(), ONE_LINE)
        request = fake.completions()[0].wait()
    assert result.ok and result.finish_reason == "complete"
    assert request.body["max_tokens"] == LINE_MAX_TOKENS  # below the specialist's 20,000
    assert result.text.startswith(" os.getcwd()\n")
    assert request.disconnected, "the client read the endless tail to its end"
    assert request.sent < answer.limit
    assert [c.status for c in sink.calls] == ["ok"]


async def test_the_client_cuts_stop_strings_the_engine_streams_along(covey_home):
    """vLLM would hold back 12 characters for a 13-character stop string; the client asks
    for stops (and special tokens) as text instead, cuts them, and stops reading there."""
    answer = Scripted(tokens=["    return", " a", "<|endoftext|>"], endless="\nimport os")
    with FakeOpenAI(script=[answer]) as fake:
        async with EngineClient(fake.url, sink=Collect()) as client:
            result = await client.complete(spec(stop=("\n\n\n", "<|endoftext|>")), BLOCK)
        request = fake.completions()[0].wait()
    assert request.body["include_stop_str_in_output"] is True
    assert request.body["skip_special_tokens"] is False
    assert result.text == "    return a" and result.finish_reason == "stop"
    assert request.disconnected and request.sent < answer.limit


async def test_a_block_is_read_until_the_engine_ends_it(covey_home):
    """The control case: without a line end to stop at, the client reads the whole answer."""
    answer = Scripted(tokens=["    return", " a + b"])
    with FakeOpenAI(script=[answer]) as fake:
        async with EngineClient(fake.url, sink=Collect()) as client:
            result = await client.complete(spec(), BLOCK)
        request = fake.completions()[0].wait()
    assert result.text == "    return a + b" and not request.disconnected
    assert request.sent == 2 and result.call.completion_tokens == 2
    assert request.body["max_tokens"] == 20_000


async def test_a_line_cut_off_by_max_tokens_is_not_shown(covey_home):
    """A one-line answer still running at ``max_tokens`` is cut mid-expression: nothing of
    it is kept, where before the half line reached the editor."""
    answer = Scripted(tokens=[" [", "'a'", ", 'b'"], endless=", 'c'")
    with FakeOpenAI(script=[answer]) as fake:
        async with EngineClient(fake.url, sink=Collect()) as client:
            result = await client.complete(spec(max_tokens=12), ONE_LINE)
        request = fake.completions()[0].wait()
    assert request.sent == 12 and result.finish_reason == "length"
    assert result.text == ""


async def test_a_block_cut_off_by_max_tokens_keeps_its_finished_lines(covey_home):
    answer = Scripted(tokens=["    total = a + b\n", "    return", " [total", ","],
                      endless=" total")
    with FakeOpenAI(script=[answer]) as fake:
        async with EngineClient(fake.url, sink=Collect()) as client:
            cut = await client.complete(spec(max_tokens=6), BLOCK)
    assert cut.finish_reason == "length" and cut.text == "    total = a + b\n"


async def test_the_frequency_penalty_is_sent_only_when_set(covey_home):
    with FakeOpenAI(script=[Scripted(tokens=["x"]), Scripted(tokens=["y"])]) as fake:
        async with EngineClient(fake.url, sink=Collect()) as client:
            await client.complete(spec(frequency_penalty=0.4), BLOCK)
            await client.complete(spec(), BLOCK)
        penalised, plain = (r.wait().body for r in fake.completions())
    assert penalised["frequency_penalty"] == 0.4
    assert "frequency_penalty" not in plain


async def test_a_user_tables_extra_body_reaches_every_request(covey_home):
    (covey_home / "specialists.toml").write_text(
        "[specialists.completion]\nextra_body = { top_k = 20, temperature = 0.5 }\n")
    with FakeOpenAI(script=[Scripted(tokens=["x"])]) as fake:
        async with EngineClient(fake.url, sink=Collect()) as client:
            await client.complete(spec(), BLOCK)
        body = fake.completions()[0].wait().body
    # engine-specific fields are added, and the user's override Covey's own
    assert (body["top_k"], body["temperature"]) == (20, 0.5)


async def test_cancelling_closes_the_stream_and_reports_once(covey_home):
    answer = Scripted(tokens=["    x"], endless=" = 1", pause_s=0.01)
    with FakeOpenAI(script=[answer]) as fake:
        sink = Collect()
        async with EngineClient(fake.url, sink=sink) as client:
            task = asyncio.create_task(client.complete(spec(), BLOCK))
            while not fake.completions() or fake.completions()[0].sent < 5:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        request = fake.completions()[0].wait()
    assert request.disconnected and request.sent < answer.limit
    assert [c.status for c in sink.calls] == ["cancelled"]


async def test_logprobs_give_mean_and_min(covey_home):
    answer = Scripted(tokens=[" a", " +", " b"], logprobs=[-0.5, -1.5, -0.1])
    with FakeOpenAI(script=[answer]) as fake:
        async with EngineClient(fake.url, sink=Collect()) as client:
            result = await client.complete(spec(), BLOCK, logprobs=True)
    assert fake.completions()[0].body["logprobs"] == 1
    assert result.call.mean_logprob == pytest.approx(-0.7)
    assert result.call.min_logprob == pytest.approx(-1.5)


async def test_no_logprobs_asked_none_recorded(covey_home):
    with FakeOpenAI(script=[Scripted(tokens=[" a"])]) as fake:
        async with EngineClient(fake.url, sink=Collect()) as client:
            result = await client.complete(spec(), BLOCK)
    assert "logprobs" not in fake.completions()[0].body
    assert result.call.mean_logprob is None and result.call.min_logprob is None


@pytest.mark.parametrize(("mean_floor", "token_floor", "reason"), [
    (-0.5, -9.0, "low confidence: mean log-prob -0.70 < -0.5"),
    (-1.0, -1.0, "low confidence: token log-prob -1.50 < -1"),
    (-1.0, -9.0, None),
])
async def test_low_confidence_escalates_on_the_scripted_logprobs(covey_home, mean_floor,
                                                                 token_floor, reason):
    specialist = spec(routing="on-low-confidence", min_mean_logprob=mean_floor,
                      min_token_logprob=token_floor, max_tokens=8)
    engine_answer = Scripted(tokens=[" a", " +", " b"], logprobs=[-0.5, -1.5, -0.1])
    with FakeOpenAI(script=[engine_answer]) as engine, FakeOpenAI("a - b") as baseline_fake:
        sink = Collect()
        client = EngineClient(engine.url, sink=sink)
        baseline = BaselineClient(BaselineConfig(url=baseline_fake.url, model="gpt-4.1",
                                                 api="chat", max_retries=0), sink=sink)
        try:
            routed = await routing.answer(specialist, BLOCK, engine=client,
                                             baseline=baseline, validate=lambda t: None)
        finally:
            await client.aclose()
            await baseline.aclose()
    assert engine.completions()[0].body["logprobs"] == 1
    assert routed.specialist.call.mean_logprob == pytest.approx(-0.7)
    assert routed.escalated is (reason is not None)
    assert len(baseline_fake.requests) == int(reason is not None)
    assert routed.text == ("a - b" if reason else " a + b")
    if reason is not None:  # the reason names the signal that tripped
        assert routed.decision.reason == reason
