"""How the gate generates: through the serving client (streaming, the specialist's stop
strings, cut-off answers finished as the editor's are), its held-out prompts in flight
together up to a bound; and the local generator finishes its answers the same way. The
engine is a scripted fake here (the mechanism, not a model's answers)."""

from __future__ import annotations

import threading
import time

import pytest
from helpers.fake_openai import FakeOpenAI
from helpers.train_repo import tiny_repo

from covey_specialists.table import Specialist
from covey_specialists.tasks import completion
from covey_specialists.tasks.common import Prompt
from covey_training import gate
from covey_training.examples import Example

SPEC = Specialist(key="completion", task="completion", adapter="builtin:completion",
                  prompt_format="fim-smol", temperature=0.7, frequency_penalty=0.2,
                  stop=("\n\n\n", "<|endoftext|>"), timeout_s=0.5)


def examples(n: int, multiline: bool = False) -> list[Example]:
    out = []
    for i in range(n):
        built = completion.training_example(f"def f{i}():\n    ", f"return {i}", "\n",
                                            multiline, "m.py", 1000)
        out.append(Example("completion", built.prompt, built.target, f"m.py:{i}", built.meta))
    return out


def number(body: dict) -> int:
    return int(body["prompt"].split("def f", 1)[1].split("(", 1)[0])


def generator(fake: FakeOpenAI, exs: list[Example], **kwargs) -> gate.EngineGenerator:
    return gate.EngineGenerator(fake.url, "key", SPEC, "completion-candidate", 64,
                                metas=gate.prompt_metas(exs), **kwargs)


def test_engine_generation_streams_through_the_serving_client_in_order():
    exs = examples(5)
    with FakeOpenAI(lambda body: f"return {number(body)}<|endoftext|>more") as fake:
        out = generator(fake, exs)([ex.prompt for ex in exs])
    assert out == [f"return {i}" for i in range(5)]  # cut at the stop, as served
    bodies = [r.body for r in fake.completions()]
    assert len(bodies) == 5
    for r, body in zip(fake.completions(), bodies, strict=True):
        assert r.auth == "Bearer key"
        assert body["stream"] is True and body["model"] == "completion-candidate"
        assert body["max_tokens"] == 64 and body["temperature"] == 0.0  # greedy
        assert body["stop"] == list(SPEC.stop) and body["frequency_penalty"] == 0.2


def test_prompts_are_in_flight_together_up_to_the_bound():
    lock, now, most = threading.Lock(), [0], [0]

    def answer(body):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.1)
        with lock:
            now[0] -= 1
        return f"return {number(body)}<|endoftext|>"

    exs = examples(6)
    with FakeOpenAI(answer) as fake:
        out = generator(fake, exs, concurrency=2)([ex.prompt for ex in exs])
    assert out == [f"return {i}" for i in range(6)]
    assert most[0] == 2


def test_a_failed_call_stops_the_gate():
    exs = examples(2)
    with FakeOpenAI("x", fail_first=100, fail_status=500, retry_after=None) as fake:
        with pytest.raises(RuntimeError, match="completion-candidate"):
            generator(fake, exs)([ex.prompt for ex in exs])


@pytest.mark.parametrize(("multiline", "reply", "shown"), [
    (True, "a = 1\nb = 2\nc = 3", "a = 1\nb = 2\n"),  # a block keeps its whole lines
    (False, "abcdefghijklmnop", ""),  # a line cut mid-way is no answer
])
def test_an_answer_cut_at_max_tokens_is_finished_as_the_editor_would(multiline, reply,
                                                                      shown):
    exs = examples(1, multiline)
    with FakeOpenAI(reply) as fake:  # four characters a token: three tokens
        out = gate.EngineGenerator(fake.url, "", SPEC, "base", 3,
                                   metas=gate.prompt_metas(exs))([exs[0].prompt])
    assert out == [shown]


@pytest.mark.parametrize(("multiline", "raw", "ran_out", "shown"), [
    (True, "a = 1\nb = 2\nc =", True, "a = 1\nb = 2\n"),
    (False, "abcdefgh", True, ""),
    (False, "abcdefgh", False, "abcdefgh"),
    (True, "a = 1<|endoftext|>b", True, "a = 1"),  # stopped: not cut off
    (False, "x\n\n\ny", False, "x"),
])
def test_local_answers_are_finished_like_the_clients(multiline, raw, ran_out, shown):
    prompt = Prompt("completion", "fim-smol", "p", {"multiline": multiline})
    assert gate.finish_answer(prompt, raw, SPEC.stop, ran_out) == shown


def test_prompt_metas_cover_the_served_and_the_fair_base_prompts():
    exs = examples(2, multiline=True)
    metas = gate.prompt_metas(exs)
    for ex in exs:
        assert metas[ex.prompt] is ex.meta and metas[gate.base_prompt(ex)] is ex.meta




def test_the_pipeline_gates_through_the_engine_with_each_adapter_hot_loaded(tmp_path):
    from covey_training import pipeline
    from covey_training.lora import TrainConfig

    repo = tiny_repo(tmp_path / "repo", train=0, held=3)
    out = tmp_path / "run"
    out.mkdir()
    exs = pipeline.heldout_examples("completion", [repo], 12, 0)
    right = {ex.prompt: ex.meta["middle"] + "<|endoftext|>" for ex in exs}
    req = pipeline.TrainRequest(
        task="completion", roots=[repo], base_model=tmp_path / "unused", out_dir=out,
        config=TrainConfig(), gate_examples=12, engine_url="", engine_key="key",
        previous_adapter=tmp_path / "previous", previous_label="builtin:completion",
        spec=SPEC)
    with FakeOpenAI(by_model={
            "completion-candidate": lambda body: right[body["prompt"]],
            "completion-previous": "# no idea<|endoftext|>",
            "base": "# no idea<|endoftext|>"}, reply="ok") as fake:
        req.engine_url = fake.url
        result = pipeline.run_gate(req)
    loads = [r.body for r in fake.requests if r.path == "/v1/load_lora_adapter"]
    assert [(b["lora_name"], b["lora_path"]) for b in loads] == [
        ("completion-candidate", str(out)), ("completion-previous", str(tmp_path / "previous"))]
    asked = [r.body["model"] for r in fake.completions()]
    assert sorted(set(asked)) == ["base", "completion-candidate", "completion-previous"]
    assert all(asked.count(m) == len(exs) for m in set(asked))
    assert all(r.body["stream"] for r in fake.completions())
    assert result["tuned"]["exact_match"] == 1.0 and result["base"]["exact_match"] == 0.0
    assert result["improved"] and (out / "gate_samples.jsonl").exists()
