"""End to end: build data → a few LoRA steps → the real engine loads the adapter at runtime
and its output changes."""

from __future__ import annotations

import httpx
import pytest

from covey_specialists.training.dataset import build_dataset
from covey_specialists.training.lora import TrainConfig, train
from covey_specialists.training.registry import hot_load
from covey_specialists.training.sources import default_roots

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def _complete(engine, model: str, prompt: str) -> dict:
    resp = httpx.post(f"{engine.url}/v1/completions", timeout=120,
                      headers={"Authorization": f"Bearer {engine.api_key}"},
                      json={"model": model, "prompt": prompt, "max_tokens": 12,
                            "temperature": 0.0, "logprobs": 1})
    resp.raise_for_status()
    return resp.json()["choices"][0]


def test_trained_adapter_hot_loads_and_changes_output(engine, tmp_path):
    from covey_specialists import base_model

    examples, info = build_dataset("completion", [default_roots()[0] / "colorsys.py"],
                                   split="all", limit=6)
    assert examples and info.scrub["kept"] >= len(examples)
    adapter = tmp_path / "adapter"
    # a deliberately large learning rate: three steps must visibly move the model
    result = train(examples, base_model.prepare_default_model(), adapter,
                   TrainConfig(steps=3, lr=2e-2, rank=4, alpha=8, batch_tokens=768))
    assert len(result.losses) == 3
    assert (adapter / "adapter_model.safetensors").is_file()

    ok, message = hot_load(engine.url, engine.api_key, "e2e-tiny", adapter)
    assert ok, message
    try:
        models = httpx.get(f"{engine.url}/v1/models", timeout=30,
                           headers={"Authorization": f"Bearer {engine.api_key}"}).json()
        assert "e2e-tiny" in {m["id"] for m in models["data"]}
        prompt = examples[0].prompt
        base = _complete(engine, "base", prompt)
        tuned = _complete(engine, "e2e-tiny", prompt)
        assert (tuned["text"] != base["text"]
                or tuned["logprobs"]["token_logprobs"] != base["logprobs"]["token_logprobs"])
    finally:
        httpx.post(f"{engine.url}/v1/unload_lora_adapter", timeout=30,
                   headers={"Authorization": f"Bearer {engine.api_key}"},
                   json={"lora_name": "e2e-tiny"})
