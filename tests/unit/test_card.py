"""The model card says where an adapter was trained, and that a CPU-trained one is not the
GPU-size run."""

from __future__ import annotations

import pytest

from covey_training.card import CPU_SIZED, write_card

RESULT = {"steps": 3, "examples_seen": 9, "tokens_seen": 900, "seconds": 1.0,
          "first_loss": 2.0, "final_loss": 1.5, "batch_tokens": 1024}


@pytest.mark.parametrize("device, says_gpu_run_remains", [
    ("cpu (x86_64, 2 threads), bf16 autocast", True),
    ("cuda (NVIDIA H200)", False),
])
def test_the_card_says_when_the_gpu_run_remains(tmp_path, device, says_gpu_run_remains):
    card = write_card(tmp_path, "completion", {"sources": []}, {"rank": 8},
                      {**RESULT, "device": device}, None, "covey train completion").read_text()
    assert f"- Device: {device}" in card
    assert (CPU_SIZED in card) is says_gpu_run_remains
