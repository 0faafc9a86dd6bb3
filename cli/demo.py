"""``covey demo``: the README's main job, end to end on the embedded default model.

Prepares the model, starts the engine, runs the four specialists on a sample file shipped
with Covey, prints each result with its timing, then a quick eval and the usage summary.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import click

from covey_cli.oneshot import read_document, serve, timing
from covey_server.triggers import trigger_at
from covey_specialists import base_model, engine
from covey_specialists.cli import table_or_exit
from covey_specialists.document import Document
from covey_specialists.edit_history import RecentEdit
from covey_specialists.tasks import Where
from covey_specialists.tasks.common import EditError, unified_diff

SAMPLE = "inventory.py"
COMPLETION_LINE = "    return min(items, key=lambda item: item.price)"
COMPLETION_CUT = "    return min("


def _step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)


def _line_of(doc: Document, needle: str) -> int:
    for row in range(doc.line_count):
        if needle in doc.line(row):
            return row
    raise click.ClickException(f"the sample no longer contains {needle!r}")


@click.command("demo")
@click.option("--eval-limit", default=20, show_default=True,
              help="Tasks per suite in the closing quick eval (0 skips it).")
def demo(eval_limit: int) -> None:
    """Run the main job: model → engine → completion, docstring, refactor and next edit on
    a sample file → quick eval → usage summary. The engine stays up (`covey engine down` stops it).

    Example:

        covey demo --eval-limit 10
    """
    table = table_or_exit()

    _step("1. Model")
    started = time.perf_counter()
    try:
        path = base_model.prepare_default_model()
    except base_model.ModelError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path} ready in {time.perf_counter() - started:.1f}s")

    _step("2. Engine")
    click.echo("(a first start compiles the model: about 2 minutes on a CPU; later starts "
               "reuse vLLM's compile cache)")
    started = time.perf_counter()
    try:
        status = engine.ensure_up(table)
    except engine.EngineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{status.state} at {status.url} on {status.device or '?'} "
               f"({time.perf_counter() - started:.1f}s); serving {', '.join(status.models)}")

    workdir = Path(tempfile.mkdtemp(prefix="covey-demo-"))
    try:
        sample = workdir / SAMPLE
        sample.write_text(resources.files("covey_server").joinpath("samples", SAMPLE).read_text())
        timings = [_complete(sample), _doc(sample), _refactor(sample), _next_edit(sample)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    _step("Timings")
    for task, call in timings:
        click.echo(f"{task:<11} {timing(call)}")

    if eval_limit:
        _quick_eval(eval_limit)
    _step("Usage summary (covey usage summary)")
    ctx = click.get_current_context()
    from covey_usage.cli import usage_group

    ctx.invoke(usage_group.get_command(ctx, "summary"))


def _complete(sample: Path):
    _step("3. Completion (ghost text at a cursor)")
    text = sample.read_text()
    sample.write_text(text.replace(COMPLETION_LINE, COMPLETION_CUT, 1))
    doc = read_document(str(sample))
    offset = doc.offset_at(_line_of(doc, COMPLETION_CUT), len(COMPLETION_CUT))
    served = serve("completion", doc,
                   Where(offset=offset, multiline=trigger_at(doc, offset).multiline))
    edit = served.shown()
    click.echo(f"cursor after {COMPLETION_CUT.strip()!r} in cheapest()")
    click.echo(f"  suggested: {edit.new_text if edit else ''!r}")
    click.echo(f"  original:  {COMPLETION_LINE[len(COMPLETION_CUT):]!r}")
    sample.write_text(text)
    return "completion", served.call


def _doc(sample: Path):
    _step("4. Generate docstring for total_value()")
    doc = read_document(str(sample))
    served = serve("doc", doc, Where(line=_line_of(doc, "def total_value")))
    _show_edit(doc, served)
    return "doc", served.call


def _refactor(sample: Path):
    _step("5. Refactor restock_list(): loop → comprehension")
    doc = read_document(str(sample))
    first = _line_of(doc, "def restock_list")
    served = serve("refactor", doc,
                   Where(line=first, last_line=first + 5, instruction="comprehension"))
    _show_edit(doc, served)
    return "refactor", served.call


def _next_edit(sample: Path):
    _step("6. Next edit: after renaming restock_list()'s `minimum` to `threshold`")
    text = sample.read_text()
    before = "def restock_list(items, minimum):\n"
    after = before.replace("minimum", "threshold")
    sample.write_text(text.replace(before, after, 1))
    doc = read_document(str(sample))
    line = _line_of(doc, after.strip())
    edit = RecentEdit(SAMPLE, line, before, after)
    served = serve("next-edit", doc, Where(offset=doc.offset_at(line, 0), edits=(edit,)))
    _show_edit(doc, served)
    sample.write_text(text)
    return "next-edit", served.call


def _show_edit(doc: Document, served) -> None:
    try:
        edit = served.edit()
    except EditError as exc:  # shown, not fatal: the editor would not apply it either
        click.echo(f"(not applied: {exc})")
        return
    click.echo(unified_diff(doc.text, edit.apply(doc.text), SAMPLE), nl=False)


def _quick_eval(limit: int) -> None:
    """Specialists against the untuned base, or against the baseline LLM when configured."""
    import os

    from covey_eval.cli import eval_group
    from covey_specialists.baseline import BaselineConfig

    try:
        configured = BaselineConfig.from_env() is not None
    except ValueError as exc:  # a bad COVEY_BASELINE_* value: one line, no traceback
        raise click.ClickException(str(exc)) from None
    against = "baseline" if configured else "base"
    if not sys.stdout.isatty():  # rich squeezes wide tables to 80 columns in a pipe or log
        os.environ.setdefault("COLUMNS", "180")
    ctx = click.get_current_context()
    run = eval_group.get_command(ctx, "run")
    for suite in ("humaneval-sl", "stdlib-doc"):
        _step(f"7. Quick eval on {suite}: specialist vs {against}, {limit} tasks")
        ctx.invoke(run, suite_name=suite, systems=("specialist", against), limit=limit)
