"""The model card written beside every adapter: data, licences, training, gate results."""

from __future__ import annotations

import json
import platform
from pathlib import Path

PSF_NOTICE = (
    "Training examples were derived from the CPython standard library, "
    "Copyright (c) 2001 Python Software Foundation; All Rights Reserved, used under the "
    "PSF License Agreement (https://docs.python.org/3/license.html). The examples are "
    "derived from, and are not a copy of, that code; no source text is stored in the adapter."
)

TASK_TEXT = {
    "completion": "fill-in-the-middle code completion (prompt format `fim-smol`: suffix "
                  "first, then prefix, with SmolLM2's existing tokens `<issue_comment>`, "
                  "`<issue_start>`, `<issue_closed>` as markers; the middle ends with "
                  "`<|endoftext|>`)",
    "doc": "docstring generation (ChatML prompt `chatml-doc`; reply is the docstring text, "
           "ending with `<|im_end|>`)",
    "refactor": "instructed refactoring (ChatML prompt `chatml-refactor`; reply is the "
                "rewritten code, ending with `<|im_end|>`)",
}


def write_card(out_dir: Path, task: str, dataset: dict, train_cfg: dict, result: dict,
               gate: dict | None, command: str) -> Path:
    stdlib = any("python3" in r or "lib/python" in r for r in dataset.get("roots", []))
    lines = [
        f"# Covey {task} adapter",
        "",
        f"A LoRA adapter for SmolLM2-135M-Instruct (Apache-2.0) that teaches {TASK_TEXT[task]}.",
        "Load it in vLLM with `--enable-lora --lora-modules NAME=PATH` "
        f"(rank {train_cfg['rank']}, so `--max-lora-rank` ≥ {train_cfg['rank']}).",
        "",
        "## Data",
        "",
        f"- Sources: {', '.join(dataset.get('roots', []))} (Python {platform.python_version()})",
        f"- Split: `{dataset.get('split')}` files only ({dataset.get('files')} files); "
        "held-out modules are chosen by `covey_eval.splits.is_heldout` and never trained on",
        f"- Examples: {dataset.get('examples')} ({dataset.get('from_usage', 0)} from accepted "
        "suggestions in the usage log)",
        f"- Scrubbing: {json.dumps(dataset.get('scrub', {}))} (secrets drop the example; "
        "emails are replaced)",
        "",
        "## Training",
        "",
        f"- Command: `{command}`",
        f"- Settings: {json.dumps(train_cfg, sort_keys=True)}",
        f"- Steps: {result['steps']}, examples seen: {result['examples_seen']}, "
        f"tokens: {result['tokens_seen']}, time: {result['seconds']} s",
        f"- Loss (mean of first/last steps): {result['first_loss']} → {result['final_loss']}",
        "",
        "## Gate (held-out, untuned base vs this adapter, same examples)",
        "",
    ]
    if gate:
        lines += [f"- Examples: {gate['examples']}, primary metric: `{gate['primary']}`", "",
                  "| metric | base | adapter |", "|---|---|---|"]
        for key in gate["tuned"]:
            lines.append(f"| {key} | {gate['base'].get(key)} | {gate['tuned'][key]} |")
        lines += ["", f"Improved: **{'yes' if gate['improved'] else 'no'}**"]
    else:
        lines.append("Not run.")
    if stdlib:
        lines += ["", "## Licence", "", "The adapter weights: Apache-2.0 (as Covey).", "",
                  PSF_NOTICE]
    path = out_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
