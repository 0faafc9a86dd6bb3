"""Attribution that sees every caller of the engine: vLLM's served-token counters, read
from ``/metrics`` with the engine key, let two processes that share one engine split its
time instead of each charging itself the whole of it."""

from __future__ import annotations

import httpx
import pytest
from unit.test_cost import LOCAL, make_call, prices

from covey_usage.cost import CostStage
from covey_usage.energy import Meter, ServedTokens, parse_counters

KEY = "sekret"

# The shape of vLLM 0.x's exposition: comments, labels, and look-alike counter names.
METRICS = """\
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{engine="0",model_name="base"}} {prompt}
vllm:prompt_tokens_by_source_total{{engine="0",model_name="base",source="local"}} 999.0
vllm:prompt_tokens_cached_total{{engine="0",model_name="base"}} 77.0
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{{engine="0",model_name="base"}} {generated}
vllm:generation_tokens_total{{engine="1",model_name="base with space"}} 5.0
"""


class FakeEngine:
    """The engine's ``/metrics``, refusing a request without the key like the guard."""

    def __init__(self):
        self.prompt, self.generated = 0.0, 0.0
        self.requests = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json={"error": "Unauthorized"})
        assert request.url.path == "/metrics"
        return httpx.Response(200, text=METRICS.format(prompt=self.prompt,
                                                       generated=self.generated))

    def counter(self, key: str = KEY, **kw) -> ServedTokens:
        return ServedTokens(LOCAL, key, transport=httpx.MockTransport(self.handler), **kw)


def test_counters_sum_every_series_of_the_two_names_only():
    text = METRICS.format(prompt=120.0, generated=30.0)
    assert parse_counters(text, ServedTokens.NAMES) == 155.0  # 120 + 30 + engine 1's 5
    assert parse_counters("vllm:prompt_tokens_total 3.0\n", ServedTokens.NAMES) is None


def test_served_tokens_are_read_with_the_key_and_unreadable_without_it():
    engine = FakeEngine()
    engine.prompt, engine.generated = 40.0, 2.0
    assert engine.counter().read() == 47.0
    refused = engine.counter(key="wrong", retry_s=60)
    assert refused.read() is None
    asked = engine.requests
    assert refused.read() is None  # a refusing engine is not asked again at once
    assert engine.requests == asked


def meter_over(engine: FakeEngine, clock: list[float], cpu_known: bool = True,
               **timing) -> Meter:
    class Cpu:
        def read(self):
            return clock[0] * 1.5 if cpu_known else None  # 1.5 cores busy; or no pid

    return Meter(cpu=Cpu(), served=engine.counter(), clock=lambda: clock[0], **timing)


def sample_at(meter: Meter, engine: FakeEngine, t: float, tokens: float,
              clock: list[float]) -> None:
    clock[0], engine.prompt = t, tokens
    meter.sample(served=True)


def test_tokens_served_to_others_take_their_share():
    engine, clock = FakeEngine(), [0.0]
    meter = meter_over(engine, clock)
    sample_at(meter, engine, 0.0, 1000.0, clock)
    sample_at(meter, engine, 2.0, 1600.0, clock)  # 600 served; this process saw 200
    stage = CostStage(prices(), meter, settle_s=0)
    call = make_call(1, 0.0, 2.0, 200)
    stage.add(call)
    stage.ready(force=True)
    # 100 tok/s of its own against 200 tok/s for callers it never saw: a third.
    assert call.engine_seconds == pytest.approx(2.0 / 3)
    assert call.cpu_seconds == pytest.approx(3.0 / 3)


def test_two_processes_on_one_engine_split_it_instead_of_both_paying_all():
    engine, clock = FakeEngine(), [0.0]

    def process_cost(watch: bool) -> float:
        meter = meter_over(engine, clock) if watch else Meter(cpu=None, clock=lambda: clock[0])
        if watch:
            sample_at(meter, engine, 0.0, 0.0, clock)
            sample_at(meter, engine, 2.0, 400.0, clock)  # both processes' 200 tokens
        stage = CostStage(prices(), meter, settle_s=0)
        call = make_call(1, 0.0, 2.0, 200)
        stage.add(call)
        stage.ready(force=True)
        return call.engine_seconds

    assert process_cost(watch=True) + process_cost(watch=True) == pytest.approx(2.0)
    assert process_cost(watch=False) == pytest.approx(2.0)  # blind: each pays it all


def test_a_call_to_another_engine_ignores_the_watched_one():
    engine, clock = FakeEngine(), [0.0]
    meter = meter_over(engine, clock)
    sample_at(meter, engine, 0.0, 0.0, clock)
    sample_at(meter, engine, 2.0, 5000.0, clock)
    stage = CostStage(prices(), meter, settle_s=0)
    call = make_call(1, 0.0, 2.0, 200, engine="http://127.0.0.1:9999")
    stage.add(call)
    stage.ready(force=True)
    assert call.engine_seconds == pytest.approx(2.0)


def test_served_tokens_are_read_often_only_while_they_move():
    engine, clock = FakeEngine(), [0.0]
    meter = meter_over(engine, clock, busy_served_s=0.25, idle_served_s=2.0)

    def reads_at(*times: float) -> list[bool]:
        out = []
        for t in times:
            clock[0] = t
            out.append(meter.sample().served_tokens is not None)
        return out

    assert reads_at(0.0, 0.1, 1.0, 2.0) == [True, False, False, True]  # idle: every 2 s
    engine.generated = 10.0
    assert reads_at(4.0, 4.1, 4.25) == [True, False, True]  # moving: every 0.25 s
    assert reads_at(9.2, 9.5, 11.2) == [True, False, True]  # still for 5 s: idle again


def test_alone_on_the_engine_the_shares_still_add_up_to_its_time():
    """Prefill makes the counter jump early in a call; over the whole busy stretch it
    still counts exactly this process's tokens, so nothing is charged to nobody."""
    engine, clock = FakeEngine(), [0.0]
    meter = meter_over(engine, clock)
    for t, tokens in ((0.0, 0.0), (1.0, 250.0), (3.0, 300.0)):
        sample_at(meter, engine, t, tokens, clock)
    stage = CostStage(prices(), meter, settle_s=0)
    calls = [make_call(1, 0.0, 2.0, 200), make_call(2, 1.0, 2.0, 100)]
    for call in calls:
        stage.add(call)
    stage.ready(force=True)
    assert sum(c.engine_seconds for c in calls) == pytest.approx(3.0)


async def test_the_editors_client_makes_its_usage_log_watch_the_local_engine(tmp_path):
    from covey_server.app import NotifyingSink
    from covey_specialists.client import EngineClient
    from covey_usage import open_usage_log

    meter = Meter(cpu=None)
    log = open_usage_log(tmp_path / "usage.db", meter=meter)
    try:
        sink = NotifyingSink(log, notify=lambda call: None)
        async with EngineClient("https://llm.example.com", "k", sink=sink):
            assert meter.served is None  # a remote engine: its cost is not ours to share
        async with EngineClient(LOCAL + "/", KEY, sink=sink):
            assert meter.watches(LOCAL)
    finally:
        log.close()
        meter.stop()


def test_served_tokens_are_not_read_when_there_is_nothing_to_share():
    engine, clock = FakeEngine(), [0.0]
    meter = meter_over(engine, clock, cpu_known=False)  # no energy counter, no engine pid
    for t in (0.0, 2.0, 4.0):
        clock[0] = t
        assert meter.sample().served_tokens is None
    assert engine.requests == 0
