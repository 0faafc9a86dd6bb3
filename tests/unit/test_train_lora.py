"""The LoRA loop: loss only on targets, checkpoints, resume, a vLLM-loadable adapter."""

from __future__ import annotations

import json

import pytest

from covey_training.dataset import build_dataset
from covey_training.lora import (
    TrainConfig,
    batch_tensors,
    ensure_pad_token,
    make_batches,
    make_packed_batches,
    pack_rows,
    train,
)
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


def test_packing_fills_rows_without_splitting_or_losing_examples():
    items = [([0] * n, 1) for n in (300, 200, 100, 400, 50, 600, 20)]
    rows = pack_rows(items, list(range(len(items))), row_len=640)
    assert sorted(i for row in rows for i in row) == list(range(len(items)))
    assert all(sum(len(items[i][0]) for i in row) <= 640 for row in rows)
    assert len(rows) < len(items)  # several examples share a row
    batches = make_packed_batches(items, count=5, batch_tokens=1280, row_len=640, seed=1)
    assert len(batches) == 5 and all(1 <= len(b) <= 2 for b in batches)
    assert batches == make_packed_batches(items, count=5, batch_tokens=1280, row_len=640,
                                          seed=1)


def test_packed_rows_do_not_attend_across_examples():
    import torch

    items = [([5, 6, 7], 1), ([8, 9], 1), ([4, 4, 4, 4], 2)]
    ids, labels, positions, mask, ntok = batch_tensors(items, [[0, 1], [2]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 8, 9], [4, 4, 4, 4, 0]]
    # the loss covers targets only; positions restart at each example
    assert labels.tolist() == [[-100, 6, 7, -100, 9], [-100, -100, 4, 4, -100]]
    assert positions.tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 0]]
    assert ntok == 9
    m = mask[0, 0]
    assert m[4, 3] and m[3, 3] and not m[3, 2] and not m[4, 0]  # second example sees itself
    assert m[2, 0] and not m[0, 2]  # causal
    assert mask.dtype == torch.bool and mask.shape == (2, 1, 5, 5)
    # one example per row: a plain padding mask (the fast attention path)
    *_, plain, _ = batch_tensors(items, [[0], [2]], pad_id=0)
    assert plain.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


class _NoPadTokenizer:
    """Just enough of a transformers 5 tokenizer that ships without a pad token."""

    def __init__(self, eos="<|im_end|>", unk=None):
        self.vocab = {"<|im_end|>": 2, "<unk>": 1}
        self.eos_token, self.unk_token, self.pad_token = eos, unk, None

    @property
    def pad_token_id(self):
        return self.vocab.get(self.pad_token) if self.pad_token else None


def test_a_tokenizer_without_pad_token_pads_with_eos():
    tok = _NoPadTokenizer()
    ensure_pad_token(tok)
    assert tok.pad_token == "<|im_end|>" and tok.pad_token_id == 2
    tok = _NoPadTokenizer(eos=None, unk="<unk>")
    ensure_pad_token(tok)
    assert tok.pad_token_id == 1
    with pytest.raises(ValueError, match="pad"):
        ensure_pad_token(_NoPadTokenizer(eos=None))


@pytest.mark.slow
def test_a_packed_row_computes_what_its_examples_compute_alone():
    import torch

    from covey_specialists import base_model
    from covey_training.lora import load_base

    model, tok = load_base(base_model.prepare_default_model(), "cpu")
    tok.pad_token = None  # the transformers 5 case: training must still pad
    ensure_pad_token(tok)
    a = tok("def f(x):\n    return x + 1\n")["input_ids"]
    b = tok("import os\nprint(os.getcwd())")["input_ids"]
    items = [(a, 2), (b, 2)]
    ids, _, positions, mask, _ = batch_tensors(items, [[0, 1]], tok.pad_token_id)
    with torch.no_grad():
        packed = model.model(input_ids=ids, attention_mask=mask,
                             position_ids=positions).last_hidden_state[0]
        alone = [model.model(input_ids=torch.tensor([x])).last_hidden_state[0] for x in (a, b)]
    assert (packed[:len(a)] - alone[0]).abs().max() < 1e-3
    assert (packed[len(a):] - alone[1]).abs().max() < 1e-3


def test_cpu_training_runs_in_bf16_only_where_the_cpu_multiplies_bf16(monkeypatch):
    from covey_specialists import vllm_cpu_lora
    from covey_training.lora import autocast_bf16

    monkeypatch.setattr(vllm_cpu_lora, "_cpu_flags", lambda: "flags : avx2 avx512f avx512_bf16")
    assert autocast_bf16("cpu") and autocast_bf16("cuda:0")
    monkeypatch.setattr(vllm_cpu_lora, "_cpu_flags", lambda: "flags : avx2 avx512f")
    assert not autocast_bf16("cpu") and autocast_bf16("cuda")


@pytest.mark.slow
def test_a_bf16_autocast_step_on_cpu_gives_the_fp32_loss():
    """The autocast path really runs in bf16 on CPU (the vocabulary projection's output says
    so), and its loss stays within 2% of the fp32 one."""
    import torch

    from covey_specialists import base_model
    from covey_training.lora import _batch_loss, attach_lora, load_base

    model, tok = load_base(base_model.prepare_default_model(), "cpu")
    model = attach_lora(model, TrainConfig())
    a = tok("def add(x, y):\n    return x + y\n")["input_ids"]
    b = tok("import os\nprint(os.getcwd())\n")["input_ids"]
    items, batch = [(a, 4), (b, 3)], [[0, 1]]
    seen = []
    model.get_base_model().lm_head.register_forward_hook(
        lambda _module, _inputs, out: seen.append(out.dtype))
    with torch.no_grad():
        fp32, n32 = _batch_loss(model, items, batch, tok.pad_token_id, "cpu", bf16=False)
        bf16, n16 = _batch_loss(model, items, batch, tok.pad_token_id, "cpu", bf16=True)
    assert seen == [torch.float32, torch.bfloat16]
    assert n32 == n16 == len(a) + len(b)
    assert abs(bf16.item() - fp32.item()) < 0.02 * fp32.item()
