"""The model card written beside every adapter: data, licences, training, gate results."""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
import re
import shlex
import sysconfig
from pathlib import Path, PurePath

from covey_eval.repo import HELD_OUT_PACKAGES
from covey_specialists.model_registry import DEFAULT_BASE_NAME
from covey_specialists.tasks import task_module
from covey_training.dataset import USAGE_WEIGHT

PSF_NOTICE = (
    "Training examples were derived from the CPython standard library, "
    "Copyright (c) 2001 Python Software Foundation; All Rights Reserved, used under the "
    "PSF License Agreement (https://docs.python.org/3/license.html). The examples are "
    "derived from, and are not a copy of, that code; no source text is stored in the adapter."
)

CPU_SIZED = ("- Trained on a CPU, at the size that fits there. The GPU-size run "
             "(`DEVICE=cuda scripts/train-default-adapters.sh`, 32,768 tokens a step) "
             "remains to be done.")


def _purpose(task: str, base: str) -> str:
    if base == DEFAULT_BASE_NAME:
        return (f"A LoRA adapter for {base} (Apache-2.0) that teaches "
                f"{task_module(task).CARD_TEXT}.")
    return (f"A LoRA adapter for the base `{base}` (registered with `covey models add`; "
            f"its licence is the model's own) that teaches the {task} task in the prompt "
            "format the specialists table gives it. The engine refuses it on any other base.")


def write_card(out_dir: Path, task: str, dataset: dict, train_cfg: dict, result: dict,
               gate: dict | None, command: str) -> Path:
    stdlib = (any(s["name"] == "cpython-stdlib" for s in dataset.get("sources", []))
              or any("python3" in r or "lib/python" in r or "standard library" in r
                     for r in dataset.get("roots", [])))
    decon = dataset.get("decontamination") or {}
    sources = dataset.get("sources", [])
    lines = [
        f"# Covey {task} adapter",
        "",
        _purpose(task, train_cfg.get("base_name") or DEFAULT_BASE_NAME),
        "Load it in vLLM with `--enable-lora --lora-modules NAME=PATH` "
        f"(rank {train_cfg['rank']}, so `--max-lora-rank` ≥ {train_cfg['rank']}).",
        "",
        "## Data",
        "",
        f"- Roots: {', '.join(portable_roots(dataset.get('roots', []), sources))} "
        f"(Python {platform.python_version()})",
        f"- Split: `{dataset.get('split')}` files only ({dataset.get('files')} files); "
        "held-out modules are chosen by `covey_eval.splits.is_heldout` (in a repository "
        "named on the command line, `is_heldout_in_repository`) and never trained on",
        f"- Examples: {dataset.get('examples')} ({dataset.get('from_usage', 0)} accepted and "
        f"kept suggestions from the usage log, each counted {USAGE_WEIGHT} times)",
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
        *([_context_line(dataset["repo_context"])] if dataset.get("repo_context") else []),
        _held_out_line(),
        "",
        *_sources_table(sources),
        "## Training",
        "",
        f"- Command: `{portable_command(command)}`",
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


def _held_out_line() -> str:
    """The packages the cross-file eval measures on, which training never reads."""
    names = ", ".join(f"{name} {held.version}" for name, held in HELD_OUT_PACKAGES.items())
    return (f"- Held out from all training by name (the cross-file eval's repositories): "
            f"{names}")


def _context_line(context: dict) -> str:
    """The share of examples whose prompt carries context from other files."""
    return (f"- Repository context: {context.get('share', 0):.1%} of examples "
            f"({context.get('examples', 0)}) carry definitions from other files of their "
            f"package, as served (up to {context.get('budget_tokens', '?')} tokens, counted "
            f"with the {context.get('counted_with', 'estimate')}); the rest have none"
            + (f"; {context['needing_it']} are holes only that context answers (a name "
               "the rest of the file never uses)" if context.get("needing_it") else ""))


def _sources_table(sources: list[dict]) -> list[str]:
    """Every body of code the examples came from, with its licence and counts."""
    if not sources:
        return []
    rows = ["| source | version | licence | files | examples |", "|---|---|---|---|---|"]
    rows += [f"| {source_label(s['name'])} | {s.get('version', '')} | {s['licence']} | "
             f"{s['files']} | {s['examples']} |" for s in sources]
    return [*rows, ""]


_PACKAGE_DIRS = ("site-packages", "dist-packages")


def _installed_version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return ""


def source_label(root: str) -> str:
    """What a training root was, without the machine it was on: "CPython 3.11.7 standard
    library", an installed distribution and its version ("attrs 26.1.0", from the folder under
    site-packages), or else the folder's own name."""
    path = PurePath(root)
    if not (path.is_absolute() or root.startswith("~")):
        return root  # already a name
    parts = path.parts
    inside = [i for i, part in enumerate(parts) if part in _PACKAGE_DIRS]
    if inside and len(parts) > inside[-1] + 1:
        top = parts[inside[-1] + 1].removesuffix(".py")
        dists = md.packages_distributions().get(top, [])
        name = dists[0] if dists else top
        version = _installed_version(name)
        return f"{name} {version}" if version else name
    if re.fullmatch(r"python\d+\.\d+", path.name) and path.parent.name.lower() == "lib":
        version = (platform.python_version() if str(path) == sysconfig.get_paths()["stdlib"]
                   else path.name.removeprefix("python"))
        return f"CPython {version} standard library"
    return path.name or root


def source_name(source: dict) -> str:
    """One entry of a dataset's ``sources`` as a name and version."""
    if source["name"] == "cpython-stdlib":
        return f"CPython {source.get('version') or '?'} standard library"
    name = source_label(source["name"])  # the user's own code: its folder's name
    return f"{name} {source.get('version') or ''}".strip()


def portable_roots(roots: list[str], sources: list[dict] | None = None) -> list[str]:
    """What the examples came from, each once: the dataset's ``sources`` (every root belongs
    to one of them) by name and version, or else each root as :func:`source_label` names
    it."""
    if sources:
        return list(dict.fromkeys(source_name(s) for s in sources))
    return list(dict.fromkeys(source_label(str(r)) for r in roots))


def portable_command(command: str) -> str:
    """The command with each absolute path cut to its last folder (``--out /work/x/run``
    becomes ``--out run``)."""
    def cut(arg: str) -> str:
        option, eq, value = arg.rpartition("=") if arg.startswith("-") else ("", "", arg)
        if value.startswith(("/", "~")):
            value = PurePath(value).name or value
        return option + eq + value

    try:
        args = shlex.split(command)
    except ValueError:
        return command
    return shlex.join(cut(a) for a in args)
