"""End to end: build data → a few LoRA steps → a real vLLM loads the adapter, both at start
(``--lora-modules``) and at runtime (``/v1/load_lora_adapter``), and its output changes.

This test starts its own engine with LoRA enabled, because the shared ``engine`` fixture
serves whatever the table names and may run without ``--enable-lora``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import httpx
import pytest
from helpers.net import free_port

from covey_training.dataset import build_dataset
from covey_training.lora import TrainConfig, train
from covey_training.registry import hot_load
from covey_training.sources import default_roots

pytestmark = [pytest.mark.engine, pytest.mark.slow]
KEY = "train-e2e-key"


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory):
    from covey_specialists import base_model

    examples, info = build_dataset("completion", [default_roots()[0] / "colorsys.py"],
                                   split="all", limit=6)
    assert examples and info.scrub["kept"] >= len(examples)
    out = tmp_path_factory.mktemp("adapter")
    # a deliberately large learning rate: three steps must visibly move the model
    result = train(examples, base_model.prepare_default_model(), out,
                   TrainConfig(steps=3, lr=2e-2, rank=4, alpha=8, batch_tokens=768))
    assert len(result.losses) == 3
    return out, examples[0].prompt


@pytest.fixture(scope="module")
def lora_engine(tiny_adapter, tmp_path_factory):
    from covey_specialists import base_model
    from covey_specialists.engine import build_command, detect_device, resolve_adapter
    from covey_specialists.table import load_table

    adapter, _ = tiny_adapter
    port = free_port()
    table = load_table()
    # the shipped adapters too, under their specialists' served names
    adapters = {spec.key: path for spec in table.specialists.values()
                if (path := resolve_adapter(spec)) is not None}
    cmd = build_command(table, str(base_model.prepare_default_model()), port,
                        {"e2e-start": adapter, **adapters}, detect_device())
    env = {**os.environ, "VLLM_API_KEY": KEY, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
           "VLLM_CPU_KVCACHE_SPACE": "1"}
    log = (tmp_path_factory.mktemp("engine") / "engine.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"engine exited; see {log.name}"
            try:
                if httpx.get(f"{url}/health", timeout=2,
                             headers={"Authorization": f"Bearer {KEY}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"engine did not start; see {log.name}")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(60)
        log.close()


def _complete(url: str, model: str, prompt: str) -> dict:
    resp = httpx.post(f"{url}/v1/completions", timeout=120,
                      headers={"Authorization": f"Bearer {KEY}"},
                      json={"model": model, "prompt": prompt, "max_tokens": 12,
                            "temperature": 0.0, "logprobs": 1})
    resp.raise_for_status()
    return resp.json()["choices"][0]


def test_trained_adapter_loads_at_start_and_at_runtime_and_changes_output(
        lora_engine, tiny_adapter, tmp_path):
    adapter, prompt = tiny_adapter
    base = _complete(lora_engine, "base", prompt)
    started = _complete(lora_engine, "e2e-start", prompt)
    assert (started["text"] != base["text"]
            or started["logprobs"]["token_logprobs"] != base["logprobs"]["token_logprobs"])

    # runtime registration, as `covey train` does it: a new version folder, loaded in place
    version = tmp_path / "v2"
    shutil.copytree(adapter, version)
    ok, message = hot_load(lora_engine, KEY, "e2e-start", version)
    assert ok, message
    ok, message = hot_load(lora_engine, KEY, "e2e-hot", version)
    assert ok, message
    models = httpx.get(f"{lora_engine}/v1/models", timeout=30,
                       headers={"Authorization": f"Bearer {KEY}"}).json()
    assert {"e2e-start", "e2e-hot"} <= {m["id"] for m in models["data"]}
    hot = _complete(lora_engine, "e2e-hot", prompt)
    assert hot["text"] == started["text"]
    assert _complete(lora_engine, "e2e-start", prompt)["text"] == started["text"]


def test_hot_load_reports_a_missing_adapter(lora_engine, tmp_path):
    ok, message = hot_load(lora_engine, KEY, "missing", tmp_path / "nope")
    assert not ok and "refused" in message


def test_shipped_completion_adapter_fills_the_middle_in_the_engine(lora_engine):
    from covey_specialists.table import load_table
    from covey_specialists.tasks import completion as prompts

    spec = load_table().for_task("completion")
    if not spec.adapter:
        pytest.skip("the table ships no completion adapter")
    ctx = prompts.CompletionContext(
        prefix="def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    ",
        suffix="\n\n\nprint(add(1, 2))\n")
    prompt = prompts.completion_prompt(ctx, "fim-smol", spec.max_prompt_chars)
    base = _complete(lora_engine, "base", prompt.text)
    tuned = _complete(lora_engine, spec.served_name, prompt.text)
    assert tuned["text"] != base["text"]
    shown = prompts.postprocess_completion(tuned["text"], prompt)
    assert "a + b" in shown or "b + a" in shown, tuned["text"]
