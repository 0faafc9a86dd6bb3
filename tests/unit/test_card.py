"""The model card says where an adapter was trained, and that a CPU-trained one is not the
GPU-size run; it names packages and versions, never a path of the machine that built it."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from covey_training.card import CPU_SIZED, portable_roots, write_card

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


ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])~?/(?=[\w.])")
"""A path from the filesystem's root or a home (a URL's slashes and ``p50/p95`` are not)."""
ADAPTERS = Path(__file__).resolve().parents[2] / "specialists" / "adapters"


def test_the_card_names_packages_and_versions_not_paths(tmp_path):
    site = "/work/main/.venv/lib/python3.11/site-packages"
    dataset = {
        "roots": ["/root/.pyenv/versions/3.11.7/lib/python3.11", f"{site}/attr",
                  f"{site}/attrs", "/home/me/src/myrepo"],
        "sources": [
            {"name": "attrs", "version": "26.1.0", "licence": "MIT", "files": 6, "examples": 17},
            {"name": "/home/me/src/myrepo", "licence": "user-supplied", "files": 3,
             "examples": 9},
            {"name": "cpython-stdlib", "version": "3.11.7", "licence": "PSF-2.0", "files": 9,
             "examples": 40}]}
    card = write_card(tmp_path, "completion", dataset, {"rank": 8}, RESULT, None,
                      "covey train completion /home/me/src/myrepo --out /tmp/run/c480"
                      ).read_text()
    assert "- Roots: attrs 26.1.0, myrepo, CPython 3.11.7 standard library (Python " in card
    assert "- Command: `covey train completion myrepo --out c480`" in card
    assert "| myrepo |  | user-supplied |" in card
    assert not ABSOLUTE_PATH.findall(card), card


def test_roots_without_sources_are_named_by_their_folders():
    site = "/x/.venv/lib/python3.11/site-packages"
    assert portable_roots([f"{site}/attr", f"{site}/attrs", f"{site}/not_installed_here",
                           "/usr/lib/python3.9", "/home/me/myrepo"]) == [
        f"attrs {importlib.metadata.version('attrs')}", "not_installed_here",
        "CPython 3.9 standard library", "myrepo"]


@pytest.mark.parametrize("path", sorted(p.relative_to(ADAPTERS).as_posix() for p in
                                        [*ADAPTERS.glob("*/README.md"),
                                         *ADAPTERS.glob("*/*.json")]))
def test_shipped_adapter_files_name_no_machine_path(path):
    text = (ADAPTERS / path).read_text()
    assert not ABSOLUTE_PATH.findall(text), [text[m.start():m.start() + 60]
                                             for m in ABSOLUTE_PATH.finditer(text)][:3]
