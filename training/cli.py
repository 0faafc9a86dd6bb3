"""``covey train``: fine-tune a specialist's LoRA adapter, gate it, register it."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from covey_specialists.tasks import NAMES as TASKS
from covey_usage.output import echo_json


@click.command("train")
@click.argument("task", type=click.Choice(TASKS))
@click.argument("repos", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--usage/--no-usage", "use_usage", default=True, show_default=True,
              help="Add accepted suggestions from the usage log (only rows with stored text).")
@click.option("--steps", type=click.IntRange(1), default=80, show_default=True,
              help="Optimizer steps.")
@click.option("--rank", type=click.IntRange(1, 16), default=8, show_default=True,
              help="LoRA rank (the engine serves up to 16).")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Peak learning rate.")
@click.option("--batch-tokens", type=click.IntRange(0), default=0, show_default=True,
              help="Tokens per micro-batch; 0 sizes it to the device: 1,024 on a CPU, from "
                   "the free memory on a GPU (bf16 there).")
@click.option("--grad-accum", type=click.IntRange(1), default=1, show_default=True,
              help="Micro-batches per optimizer step.")
@click.option("--max-len", type=click.IntRange(64), default=640, show_default=True,
              help="Longest example in tokens, and the length of a packed row.")
@click.option("--pack/--no-pack", default=True, show_default=True,
              help="Pack several examples into each row (no attention across them).")
@click.option("--packages", "use_packages", is_flag=True,
              help="Also train on installed packages whose licence is MIT, BSD, Apache-2.0, "
                   "PSF or ISC (listed in the model card).")
@click.option("--generic-share", type=click.FloatRange(0, 0.9), default=0.25,
              show_default=True,
              help="With REPOS: share of the training set drawn from the standard library, so "
                   "the adapter keeps what it knew (0: the repositories only).")
@click.option("--per-file", type=click.IntRange(1), default=None,
              help="Examples per source file (default: 6 completion, 4 doc, 4 refactor).")
@click.option("--data-only", is_flag=True,
              help="Build the dataset, report counts and time, and stop (no training).")
@click.option("--repo-context/--no-repo-context", "repo_context", default=True,
              show_default=True,
              help="Completion prompts carry context from other files of the example's "
                   "package, as the editor's are served (the gate's too).")
@click.option("--init-adapter", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Start from this LoRA adapter's weights (same rank) instead "
              "of a fresh LoRA; the card records it. Default with REPOS: the adapter in use, "
              "so training on one repository keeps what it knew.")
@click.option("--fresh", is_flag=True,
              help="Start from a fresh LoRA, even when training on REPOS.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for data and init.")
@click.option("--threads", type=click.IntRange(0), default=1, show_default=True,
              help="torch CPU threads (0: torch's default).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Use at most this many training examples.")
@click.option("--base", "base_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Base model folder (default: the specialist's base).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Work folder (checkpoints, adapter, card); an existing one is resumed.")
@click.option("--gate-examples", type=click.IntRange(0), default=40, show_default=True,
              help="Held-out examples for the gate (0 skips the gate; then only --force "
                   "registers).")
@click.option("--engine-url", default="", help="Generate the gate through this engine "
              "instead of locally (it must allow runtime LoRA loading).")
@click.option("--engine-key", default="", envvar="COVEY_ENGINE_API_KEY",
              help="API key for --engine-url.")
@click.option("--force", is_flag=True, help="Register even if the gate shows no improvement.")
@click.option("--no-register", is_flag=True, help="Train and gate only.")
@click.option("--everywhere", is_flag=True,
              help="Serve the adapter in every workspace, not only in the REPOS trained on "
                   "(always so without REPOS).")
@click.option("--json", "as_json", is_flag=True, help="Output a JSON summary.")
def train_command(task, repos, use_usage, steps, rank, lr, batch_tokens, grad_accum, max_len,
                  pack, use_packages, generic_share, per_file, data_only, repo_context,
                  init_adapter, fresh, seed, threads, device, limit, base_path, out_dir,
                  gate_examples, engine_url, engine_key, force, no_register, everywhere,
                  as_json) -> None:
    """Fine-tune the TASK specialist's LoRA adapter on REPOS (default: the installed
    Python standard library) plus accepted suggestions from the usage log; gate it on
    held-out modules against the untuned base and the adapter in use; register it as a
    new version and load it into the running engine. An adapter trained on REPOS serves
    files under them only, unless --everywhere.

    Example:

        covey train completion ~/src/myproject --steps 200

        covey train doc --gate-examples 20 --no-register --out /tmp/doc-run

        covey train completion --packages --per-file 24 --data-only
    """
    from covey_settings import home
    from covey_specialists import base_model, engine, model_registry
    from covey_specialists.table import TableError, load_table
    from covey_training import pipeline
    from covey_training.lora import TrainConfig
    from covey_training.sources import default_roots

    workspaces = [Path(r).resolve() for r in repos] if repos and not everywhere else []
    try:
        table = load_table()
        # the adapter a new one would replace: the repository's own, if it has one
        spec = table.for_task(task, str(workspaces[0]) if workspaces else None)
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    base = str(base_path) if base_path is not None else spec.base
    try:
        if base_path is None and not data_only:
            base_path = Path(base_model.resolve_base(spec.base))
        targets = model_registry.target_modules(base) if not data_only else ()
    except base_model.ModelError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        previous = engine.resolve_adapter(spec)  # the adapter a new one would replace
    except engine.EngineError as exc:
        raise click.ClickException(f"{exc}; the gate compares a new adapter with it") from None
    roots = list(repos) or default_roots()
    init_adapter, note = starting_adapter(init_adapter, fresh, bool(repos), previous, rank)
    if note:
        click.echo(note, err=True)
    usage_examples = []
    if use_usage and home.usage_db_path().exists():
        from covey_training.usage_data import accepted_examples
        try:
            usage_examples, stats = accepted_examples(task)
        except Exception as exc:  # a locked or damaged log must not stop training
            click.echo(f"usage log skipped: {exc}", err=True)
        else:
            click.echo(f"usage log: {stats.used} accepted and kept suggestion(s) with text "
                       f"({stats.without_text} without stored text, {stats.removed} removed "
                       "after the accept)", err=True)
    out_dir = out_dir or home.covey_home() / "training" / task / time.strftime("%Y%m%d-%H%M%S")
    try:
        cfg = TrainConfig(steps=steps, lr=lr, rank=rank, alpha=2 * rank,
                          batch_tokens=batch_tokens, grad_accum=grad_accum, max_len=max_len,
                          pack=pack, seed=seed, threads=threads, device=device,
                          init_adapter=str(init_adapter or ""),
                          base_name=model_registry.base_name(base),
                          **({"target_modules": targets} if targets else {}))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    source_sets = []
    if use_packages:
        from covey_training.dataset import package_sets

        source_sets, skipped = package_sets()
        click.echo(f"packages: {len(source_sets)} with a permissive licence, "
                   f"{len(skipped)} skipped ({', '.join(n for n, _ in skipped[:8])}"
                   f"{', …' if len(skipped) > 8 else ''})", err=True)
    request = pipeline.TrainRequest(
        task=task, roots=roots, base_model=base_path, out_dir=out_dir, config=cfg,
        usage_examples=usage_examples, source_sets=source_sets, per_file=per_file,
        generic_share=generic_share if repos else 0.0,
        limit=limit, data_only=data_only, repo_context=repo_context,
        gate_examples=gate_examples,
        engine_url=engine_url, engine_key=engine_key,
        command=_command_line(task, repos), previous_adapter=previous,
        previous_label=spec.adapter if previous else "")
    click.echo(f"training {task} adapter in {out_dir}", err=True)
    try:
        if data_only:
            outcome = pipeline.run(request)
        else:
            with _progress(steps) as report:
                outcome = pipeline.run(request, progress=report)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    data = outcome.dataset
    click.echo(_data_line(data), err=True)
    if data_only:
        if as_json:
            echo_json(data)
        else:
            click.echo(f"{out_dir}: dataset only (train.jsonl, dataset.json)")
        return

    summary = {"task": task, "out": str(out_dir), "examples": outcome.dataset["examples"],
               "scrub": outcome.dataset["scrub"], "final_loss": outcome.result["final_loss"],
               "gate": outcome.gate, "registered": None}
    gate_ok = bool(outcome.gate and outcome.gate["improved"])
    if no_register:
        summary["message"] = "not registered (--no-register)"
    elif gate_ok or force:
        target = engine.resolve(table.engine)
        running = engine.status(table).state == "up" if target.managed else True
        general = table.for_task(task)
        version, message = pipeline.register(task, general.key, out_dir,
                                             target.url if running else "", target.api_key,
                                             workspaces=workspaces)
        summary["registered"], summary["message"] = str(version), message
    else:
        beaten = " and ".join(f"the {'untuned base' if c['other'] == 'base' else 'adapter in use'}"
                              for c in outcome.gate["comparisons"]) if outcome.gate else ""
        summary["message"] = (f"not registered: the adapter is not shown better than {beaten} "
                              "on held-out code (95% paired bootstrap; use --force to "
                              "register anyway)" if outcome.gate else
                              "not registered: no gate was run (use --force to register)")
    if as_json:
        echo_json(summary)
        return
    if outcome.gate:
        g = outcome.gate
        click.echo(f"gate ({g['examples']} held-out examples, {g['primary']}): "
                   f"base {g['base'][g['primary']]:.3f} → adapter {g['tuned'][g['primary']]:.3f}"
                   + (f" (adapter in use, {g['previous_adapter']}: "
                      f"{g['previous'][g['primary']]:.3f})" if g.get("previous") else ""))
        for c in g["comparisons"]:
            click.echo(f"  vs {c['other']}: {c['mean_diff']:+.3f} "
                       f"[{c['lo']:+.3f}, {c['hi']:+.3f}] ({c['level']:.0%} paired bootstrap, "
                       f"n={c['n']}) — {'better' if c['better'] else 'not shown better'}")
    click.echo(f"{summary['registered'] or out_dir}: {summary['message']}")


def starting_adapter(init_adapter: Path | None, fresh: bool, on_repos: bool,
                     in_use: Path | None, rank: int) -> tuple[Path | None, str]:
    """The adapter training starts from, and a line saying why when it is not the one
    asked for: the one given; else, training on the user's repositories, the adapter in
    use (of the same rank), so it keeps what it knew; else a fresh LoRA."""
    import json

    if init_adapter is not None:
        return init_adapter, ""
    if fresh or not on_repos or in_use is None:
        return None, ""
    in_use_rank = json.loads((in_use / "adapter_config.json").read_text()).get("r")
    if in_use_rank != rank:
        return None, (f"starting from a fresh LoRA: the adapter in use has rank {in_use_rank}, "
                      f"not {rank}")
    return in_use, f"starting from the adapter in use ({in_use})"


def _data_line(data: dict) -> str:
    d = data.get("decontamination") or {}
    return (f"data: {data['examples']} examples from {data['files']} files in "
            f"{data['seconds']} s; {data['duplicates']} near-duplicates dropped; "
            f"decontamination removed {d.get('removed', 0)} (13-grams shared with "
            f"{', '.join(d.get('against', {})) or 'no eval suite'}) from {d.get('files', 0)} "
            f"file(s); scrubbing dropped {sum(data['scrub'].get('dropped', {}).values())}"
            + (f"; {g['examples']} of them generic ({g['source']}, share {g['share']:.0%})"
               if (g := data.get("generic")) else ""))


def _command_line(task: str, repos) -> str:
    """The command as typed, for the model card (group options such as -v dropped)."""
    argv = sys.argv[1:]
    if "train" in argv:
        return "covey " + shlex.join(argv[argv.index("train"):])
    return "covey train " + shlex.join([task, *map(str, repos)])


class _progress:
    """A rich progress bar on stderr with the running loss."""

    def __init__(self, total: int):
        self.total = total

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress("[progress.description]{task.description}", BarColumn(),
                            MofNCompleteColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True))
        self.bar.__enter__()
        self.task = self.bar.add_task("loss  -    ", total=self.total)
        return self.update

    def update(self, step: int, total: int, loss: float) -> None:
        self.bar.update(self.task, completed=step, description=f"loss {loss:.3f}")

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)
