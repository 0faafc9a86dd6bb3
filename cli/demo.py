"""``covey demo``: the README's main job, end to end on the embedded default model.

Prepares the model, starts the engine, runs the three specialists on a sample file shipped
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

from covey_server.oneshot import call_model, read_document
from covey_server.triggers import decide
from covey_specialists import base_model, engine
from covey_specialists.document import Document
from covey_specialists.table import TableError, load_table
from covey_specialists.tasks.common import EditError, unified_diff
from covey_specialists.tasks.completion import finish_completion, plan_completion
from covey_specialists.tasks.doc import finish_docstring, plan_docstring
from covey_specialists.tasks.refactor import READY_INSTRUCTIONS, finish_refactor, plan_refactor

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


def _timing(call) -> str:
    ttft = "-" if call.ttft_ms is None else f"{call.ttft_ms:.0f} ms"
    return (f"latency {call.latency_ms:.0f} ms, first token {ttft}, "
            f"{call.prompt_tokens}+{call.completion_tokens} tokens ({call.specialist} via "
            f"model {call.model!r})")


@click.command("demo")
@click.option("--eval-limit", default=20, show_default=True,
              help="Tasks per suite in the closing quick eval (0 skips it).")
def demo(eval_limit: int) -> None:
    """Run the main job: model → engine → completion, docstring and refactor on a sample
    file → quick eval → usage summary. The engine stays up (`covey engine down` stops it).

    Example:

        covey demo --eval-limit 10
    """
    try:
        table = load_table()
    except TableError as exc:
        raise click.ClickException(str(exc)) from None

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
        timings = [_complete(sample), _doc(sample), _refactor(sample)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    _step("Timings")
    for task, call in timings:
        click.echo(f"{task:<11} {_timing(call)}")

    if eval_limit:
        _quick_eval(eval_limit)
    _step("Usage summary (covey usage summary)")
    ctx = click.get_current_context()
    from covey_usage.cli import usage_group

    ctx.invoke(usage_group.get_command(ctx, "summary"))


def _complete(sample: Path):
    _step("3. Completion (ghost text at a cursor)")
    text = sample.read_text()
    cut = text.replace(COMPLETION_LINE, COMPLETION_CUT, 1)
    sample.write_text(cut)
    doc = read_document(str(sample))
    row = _line_of(doc, COMPLETION_CUT)
    offset = doc.offset_at(row, len(COMPLETION_CUT))
    spec = load_table().for_task("completion")
    plan = plan_completion(doc, offset, decide(doc, offset).multiline, spec, str(sample))
    result = call_model("completion", plan.prompt, "python", None)
    suggestion = finish_completion(plan, result.text)
    click.echo(f"cursor after {COMPLETION_CUT.strip()!r} in cheapest()")
    click.echo(f"  suggested: {suggestion!r}")
    click.echo(f"  original:  {COMPLETION_LINE[len(COMPLETION_CUT):]!r}")
    sample.write_text(text)
    return "completion", result.call


def _doc(sample: Path):
    _step("4. Generate docstring for total_value()")
    doc = read_document(str(sample))
    spec = load_table().for_task("doc")
    plan = plan_docstring(doc, _line_of(doc, "def total_value"), spec.max_prompt_chars)
    result = call_model("doc", plan.prompt, "python", None)
    _show_edit(doc, sample, lambda: finish_docstring(doc, plan, result.text))
    return "doc", result.call


def _refactor(sample: Path):
    _step("5. Refactor restock_list(): loop → comprehension")
    doc = read_document(str(sample))
    first = _line_of(doc, "def restock_list")
    spec = load_table().for_task("refactor")
    plan = plan_refactor(doc, first, first + 5, READY_INSTRUCTIONS["comprehension"],
                         spec.max_prompt_chars)
    result = call_model("refactor", plan.prompt, "python", None)
    _show_edit(doc, sample, lambda: finish_refactor(doc, plan, result.text))
    return "refactor", result.call


def _show_edit(doc: Document, sample: Path, finish) -> None:
    try:
        edit = finish()
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
        _step(f"6. Quick eval on {suite}: specialist vs {against}, {limit} tasks")
        ctx.invoke(run, suite_name=suite, systems=("specialist", against), limit=limit)
