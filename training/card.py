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


CPU_SIZED = ("- Trained on a CPU, at the size that fits there. The GPU-size run "
             "(`DEVICE=cuda scripts/train-default-adapters.sh`, 32,768 tokens a step) "
             "remains to be done.")


def write_card(out_dir: Path, task: str, dataset: dict, train_cfg: dict, result: dict,
               gate: dict | None, command: str) -> Path:
    stdlib = (any(s["name"] == "cpython-stdlib" for s in dataset.get("sources", []))
              or any("python3" in r or "lib/python" in r for r in dataset.get("roots", [])))
    decon = dataset.get("decontamination") or {}
    lines = [
        f"# Covey {task} adapter",
        "",
        f"A LoRA adapter for SmolLM2-135M-Instruct (Apache-2.0) that teaches {TASK_TEXT[task]}.",
        "Load it in vLLM with `--enable-lora --lora-modules NAME=PATH` "
        f"(rank {train_cfg['rank']}, so `--max-lora-rank` ≥ {train_cfg['rank']}).",
        "",
        "## Data",
        "",
        f"- Roots: {', '.join(dataset.get('roots', []))} (Python {platform.python_version()})",
        f"- Split: `{dataset.get('split')}` files only ({dataset.get('files')} files); "
        "held-out modules are chosen by `covey_eval.splits.is_heldout` and never trained on",
        f"- Examples: {dataset.get('examples')} ({dataset.get('from_usage', 0)} from accepted "
        "suggestions in the usage log)",
        f"- Scrubbing: {json.dumps(dataset.get('scrub', {}))} (secrets drop the example; "
        "emails are replaced)",
        f"- Near-duplicates dropped (normalised target and nearby code): "
        f"{dataset.get('duplicates', 0)}",
        f"- Decontamination: {decon.get('removed', 0)} examples from {decon.get('files', 0)} "
        f"files removed for sharing a {decon.get('n', 13)}-gram of tokens with the eval "
        f"texts ({json.dumps(decon.get('against', {}))})" if decon else
        "- Decontamination: not run",
        f"- Data built in {dataset.get('seconds', '?')} s",
        *([f"- Rules (definitions kept/dropped): {json.dumps(dataset['rules'])}"]
          if dataset.get("rules") else []),
        *([f"- Mix after rebalancing ([found, kept] per kind): {json.dumps(dataset['mix'])}"]
          if dataset.get("mix") else []),
        "",
        *_sources_table(dataset.get("sources", [])),
        "## Training",
        "",
        f"- Command: `{command}`",
        f"- Settings: {json.dumps(train_cfg, sort_keys=True)}",
        f"- Device: {result.get('device') or 'not recorded'}; tokens per micro-batch: "
        f"{result.get('batch_tokens') or train_cfg.get('batch_tokens')}",
        f"- Steps: {result['steps']}, examples seen: {result['examples_seen']}, "
        f"tokens seen: {result['tokens_seen']}, time: {result['seconds']} s",
        f"- Loss (mean of first/last steps): {result['first_loss']} → {result['final_loss']}",
        *([CPU_SIZED] if str(result.get("device", "")).startswith("cpu") else []),
        "",
        "## Gate (held-out, same examples: the untuned base, this adapter, the one it replaces)",
        "",
    ]
    if gate:
        lines += [f"- Examples: {gate['examples']}, primary metric: `{gate['primary']}`", "",
                  "| metric | base | adapter |", "|---|---|---|"]
        for key in gate["tuned"]:
            lines.append(f"| {key} | {gate['base'].get(key)} | {gate['tuned'][key]} |")
        if gate.get("comparisons"):
            lines += ["", f"Paired bootstrap of `{gate['primary']}` (this adapter − other):",
                      "", "| against | mean difference | interval | n | better |",
                      "|---|---|---|---|---|"]
            lines += [f"| {c['other']} | {c['mean_diff']:+.4f} | [{c['lo']:+.4f}, {c['hi']:+.4f}]"
                      f" ({c['level']:.0%}) | {c['n']} | {'yes' if c['better'] else 'no'} |"
                      for c in gate["comparisons"]]
        lines += ["", f"Accepted: **{'yes' if gate['improved'] else 'no'}**"]
    else:
        lines.append("Not run.")
    if stdlib:
        lines += ["", "## Licence", "", "The adapter weights: Apache-2.0 (as Covey).", "",
                  PSF_NOTICE]
    others = [x for x in dataset.get("sources", []) if x["name"] != "cpython-stdlib"
              and x["licence"] != "user-supplied"]
    if others:
        lines += ["", "Installed packages used above are each under the licence listed; "
                  "their copyright notices stay with their distributions."]
    path = out_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _sources_table(sources: list[dict]) -> list[str]:
    """Every body of code the examples came from, with its licence and counts."""
    if not sources:
        return []
    rows = ["| source | version | licence | files | examples |", "|---|---|---|---|---|"]
    rows += [f"| {s['name']} | {s.get('version', '')} | {s['licence']} | {s['files']} | "
             f"{s['examples']} |" for s in sources]
    return [*rows, ""]
