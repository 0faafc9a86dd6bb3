"""The baseline LLM client against a fake OpenAI-compatible server."""

import pytest
from helpers.fake_openai import FakeOpenAI

from covey_specialists.baseline import BaselineClient, BaselineConfig


class Collect:
    def __init__(self):
        self.calls = []

    def record(self, call):
        self.calls.append(call)


async def _ask(fake, api="chat", **config):
    sink = Collect()
    client = BaselineClient(BaselineConfig(url=fake.url, model="gpt-4.1", api_key="sk-test",
                                           api=api, backoff_s=0.01, **config), sink=sink)
    try:
        reply = await client.complete(task="completion", prompt="def f():\n",
                                      messages=[{"role": "user", "content": "hi"}],
                                      eval_run_id=None)
    finally:
        await client.aclose()
    assert sink.calls == [reply.call]  # reported exactly once
    return reply


@pytest.mark.parametrize("api", ["chat", "completions"])
async def test_streams_text_usage_and_ttft(api):
    with FakeOpenAI("    return 42\n") as fake:
        reply = await _ask(fake, api=api)
    assert reply.text == "    return 42\n"
    call = reply.call
    assert call.status == "ok" and call.source == "baseline" and call.model == "gpt-4.1"
    assert (call.prompt_tokens, call.completion_tokens) == (100, 7)
    assert call.ttft_ms is not None and call.ttft_ms <= call.latency_ms
    request = fake.requests[0]
    assert request["path"] == ("/v1/chat/completions" if api == "chat" else "/v1/completions")
    assert request["body"]["stream"] is True
    assert request["body"]["stream_options"] == {"include_usage": True}
    assert request["auth"] == "Bearer sk-test"


async def test_rate_limit_is_retried_after_retry_after():
    with FakeOpenAI("ok", fail_first=2, fail_status=429, retry_after="0") as fake:
        reply = await _ask(fake)
    assert reply.text == "ok" and reply.call.status == "ok"
    assert reply.retries == 2 and len(fake.requests) == 3


async def test_server_errors_retry_with_backoff_then_give_up():
    with FakeOpenAI("never", fail_first=100, fail_status=503, retry_after=None) as fake:
        reply = await _ask(fake, max_retries=2)
    assert reply.call.status == "error" and "503" in reply.call.error
    assert len(fake.requests) == 3 and reply.text == ""


async def test_client_errors_are_not_retried():
    with FakeOpenAI("never", fail_first=100, fail_status=401) as fake:
        reply = await _ask(fake)
    assert reply.call.status == "error" and "401" in reply.call.error
    assert len(fake.requests) == 1


async def test_unreachable_endpoint_is_an_error_not_an_exception():
    fake = FakeOpenAI()
    fake.server.server_close()  # never started: nothing listens on the port
    reply = await _ask(fake)
    assert reply.call.status == "error"


def test_config_from_env(monkeypatch):
    monkeypatch.delenv("COVEY_BASELINE_URL", raising=False)
    assert BaselineConfig.from_env() is None
    monkeypatch.setenv("COVEY_BASELINE_URL", "http://example.invalid/v1/")
    monkeypatch.setenv("COVEY_BASELINE_MODEL", "gpt-4o-mini")
    cfg = BaselineConfig.from_env()
    assert cfg.url == "http://example.invalid/v1" and cfg.model == "gpt-4o-mini"
    assert cfg.api == "chat"
