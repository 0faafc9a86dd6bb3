"""The LoRA loop: loss only on targets, checkpoints, resume, a vLLM-loadable adapter."""

from __future__ import annotations

import json

import pytest

from covey_training.dataset import build_dataset
from covey_training.lora import TrainConfig, make_batches, train
from covey_training.sources import default_roots


def test_batches_respect_the_token_budget_and_are_seeded():
    items = [([0] * n, 1) for n in (10, 50, 20, 40, 30, 5)]
    batches = make_batches(items, steps=7, batch_tokens=60, seed=3)
    assert len(batches) == 7
    for batch in batches:
        assert max(len(items[i][0]) for i in batch) * len(batch) <= 60 or len(batch) == 1
    assert batches == make_batches(items, steps=7, batch_tokens=60, seed=3)
    assert batches != make_batches(items, steps=7, batch_tokens=60, seed=4)


def test_rank_is_capped_for_the_engine():
    with pytest.raises(ValueError, match="rank"):
        TrainConfig(rank=32)


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_interrupted_training_resumes_where_it_stopped(tmp_path):
    from safetensors.torch import load_file

    from covey_specialists import base_model

    base = base_model.prepare_default_model()
    examples, _ = build_dataset("completion", [default_roots()[0] / "colorsys.py"],
                                split="all", limit=4)
    cfg = TrainConfig(steps=3, rank=2, alpha=4, batch_tokens=400, checkpoint_every=1)

    def stop_after_two(step, total, loss):
        if step == 2:
            raise _Interrupt

    run = tmp_path / "run"
    with pytest.raises(_Interrupt):
        train(examples, base, run, cfg, progress=stop_after_two)
    assert not (run / "adapter_model.safetensors").exists()
    resumed = train(examples, base, run, cfg)
    assert resumed.resumed_from == 2 and len(resumed.losses) == 3

    straight = train(examples, base, tmp_path / "straight", cfg)
    assert resumed.losses == straight.losses
    a = load_file(str(run / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k].float() - b[k].float()).abs().max() < 1e-3 for k in a)

    config = json.loads((run / "adapter_config.json").read_text())
    assert config["r"] == 2 and config["peft_type"] == "LORA"
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"}
    assert all(".lora_A." in k or ".lora_B." in k for k in a)
