"""One-shot commands: ``covey complete``, ``covey doc`` and ``covey refactor``.

They run the same pure steps as the language server (context, triggers, edits, router) on a
file, once, and print the result. Lines and columns are 1-based, as editors show them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path

import click

from covey_server.triggers import trigger_at
from covey_specialists import engine
from covey_specialists.cli import table_or_exit
from covey_specialists.client import EngineClient
from covey_specialists.document import Document, language_for
from covey_specialists.repo_context import Workspace
from covey_specialists.routing import Router, Served
from covey_specialists.tasks import Where
from covey_specialists.tasks.common import EditError, unified_diff
from covey_specialists.tasks.refactor import READY_INSTRUCTIONS
from covey_specialists.workspace import WorkspaceIndex, scannable

log = logging.getLogger("covey.oneshot")


def read_document(path: str) -> Document:
    file = Path(path)
    if not file.is_file():
        raise click.ClickException(f"{path}: no such file")
    data = file.read_bytes()
    if b"\x00" in data[:8192]:
        raise click.ClickException(f"{path}: looks like a binary file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return Document(file.resolve().as_uri(), text, language_for(None, str(file)),
                    max_parse_bytes=max(len(data), 1), encoding="utf-32")


def _sink():
    try:
        from covey_usage import open_usage_log

        return open_usage_log()
    except Exception as exc:  # noqa: BLE001 - the log is optional for a one-shot answer
        log.warning("usage log unavailable: %s", exc)
        return None


def workspace_of(path: Path) -> Workspace:
    """The repository around ``path`` as the editor's workspace: the nearest folder above it
    with a ``.git``, ``pyproject.toml`` or ``package.json`` (else the file's own folder),
    indexed now (a few thousand files a second)."""
    path = path.resolve()
    root = next((folder for folder in path.parents
                 if any((folder / mark).exists() for mark in REPO_MARKS)), path.parent)
    index = WorkspaceIndex()
    if scannable(root):  # a file in /tmp or ~ gets no index of everything around it
        for _ in index.scan(root):
            pass
    return Workspace(index, None, path.relative_to(root).as_posix())


REPO_MARKS = (".git", "pyproject.toml", "package.json")


def serve(task: str, doc: Document, where: Where, engine_url: str | None = None,
          context: str = "repo") -> Served:
    """One answer through the router, as the editor gets it (plan with the repository's
    context, model, finish), reported to the usage log; a dead engine, a plan that cannot
    be made or a failed call → one clear line (ClickException)."""
    table = table_or_exit()
    workspace = workspace_of(Path(doc.uri.removeprefix("file://"))) \
        if context == "repo" else None
    try:
        target = engine.resolve(table.engine, url=engine_url or "")
    except engine.EngineError as exc:  # e.g. a key file others can read
        raise click.ClickException(str(exc)) from None
    url, key = target.url, target.api_key
    sink = _sink()

    async def run() -> Served:
        async with EngineClient(url, key, sink=sink, client_name="cli") as client:
            router = Router(table, client)
            try:
                plan = router.plan(task, doc, where, workspace=workspace)
            except EditError as exc:
                raise click.ClickException(f"{_name(doc)}: {exc}") from None
            if not await router.refresh_models():
                raise click.ClickException(f"the engine at {url} is not answering; start it "
                                           "with `covey engine up`")
            return await router.serve_plan(task, plan)

    try:
        served = asyncio.run(run())
    finally:
        if sink is not None:
            sink.close()
    if not served.routed.ok:
        call = served.call
        raise click.ClickException(f"the {task} model call failed: {call.error or call.status}")
    return served


def _name(doc: Document) -> str:
    return Path(doc.uri.removeprefix("file://")).name


def _check_line(doc: Document, path: str, line: int) -> int:
    if not 1 <= line <= doc.line_count:
        raise click.ClickException(f"{path}: line {line} is outside the file "
                                   f"(1–{doc.line_count})")
    return line - 1


def timing(call) -> str:
    """One line on a call: its latency, first token, tokens and who answered."""
    ttft = "?" if call.ttft_ms is None else f"{call.ttft_ms:.0f}"
    return (f"{call.latency_ms:.0f} ms (first token {ttft} ms), {call.prompt_tokens}+"
            f"{call.completion_tokens} tokens, specialist {call.specialist}, model {call.model}")




def engine_option(command):
    """``--engine-url`` and ``--context``, shared by the one-shot commands."""
    command = click.option(
        "--context", type=click.Choice(["repo", "none"]), default="repo", show_default=True,
        help="Context from the rest of the repository (definitions in use), as the editor "
             "sends it; none: the file alone.")(command)
    return click.option(
        "--engine-url", metavar="URL",
        help="Use this OpenAI-compatible engine instead of the managed one (API key from "
             "COVEY_ENGINE_API_KEY).")(command)


@click.command("complete")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--line", type=int, required=True, help="Line of the cursor (1-based).")
@click.option("--col", type=int, required=True, help="Column of the cursor (1-based).")
@click.option("--force", is_flag=True, help="Ask the model even where the editor would not.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@engine_option
def complete(file: str, line: int, col: int, force: bool, as_json: bool,
             engine_url: str | None, context: str) -> None:
    """Complete FILE at a cursor and print the suggestion and its timing.

    Example:

        covey complete app.py --line 12 --col 9
    """
    doc = read_document(file)
    row = _check_line(doc, file, line)
    offset = doc.offset_at(row, col - 1, clamp=False)
    if offset is None or col < 1:
        raise click.ClickException(f"{file}: column {col} is outside line {line} "
                                   f"(1–{len(doc.line(row)) + 1})")
    trigger = trigger_at(doc, offset)
    if not trigger.call and not force:
        raise click.ClickException(f"no completion here: {trigger.reason} (--force asks anyway)")
    started = time.perf_counter()
    served = serve("completion", doc, Where(offset=offset, multiline=trigger.multiline),
                   engine_url, context)
    edit = served.shown()
    text = edit.new_text if edit is not None else ""
    total_ms = (time.perf_counter() - started) * 1000
    call = served.call
    if as_json:
        click.echo(json.dumps({"completion": text, "multiline": trigger.multiline,
                               "callId": call.id, "latencyMs": call.latency_ms,
                               "ttftMs": call.ttft_ms, "totalMs": total_ms,
                               "promptTokens": call.prompt_tokens,
                               "completionTokens": call.completion_tokens}))
        return
    click.echo(text if text else "(the model suggested nothing here)")
    click.echo(f"-- {timing(call)}", err=True)


def _write_edit(doc: Document, file: str, served: Served, write: bool) -> None:
    try:
        edit = served.edit()
    except EditError as exc:
        raise click.ClickException(str(exc)) from None
    new_text = edit.apply(doc.text)
    if write:
        Path(file).write_text(new_text, encoding="utf-8")
    click.echo(unified_diff(doc.text, new_text, file), nl=False)
    click.echo(f"-- {timing(served.call)}{' (written)' if write else ''}", err=True)


@click.command("doc")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--line", type=int, required=True,
              help="A line inside the function or class (1-based).")
@click.option("--write", is_flag=True, help="Apply the edit to FILE as well.")
@engine_option
def doc(file: str, line: int, write: bool, engine_url: str | None, context: str) -> None:
    """Write a docstring for the function or class at a line; print it as a unified diff.

    Example:

        covey doc app.py --line 12 | patch -p1
    """
    document = read_document(file)
    row = _check_line(document, file, line)
    _write_edit(document, file, serve("doc", document, Where(line=row), engine_url, context),
                write)


def _line_range(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*(?:[-:]\s*(\d+))?\s*", value)
    if not match:
        raise click.BadParameter(f"expected A-B (1-based lines), got {value!r}",
                                 param_hint="--lines")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    return first, last


@click.command("refactor")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--lines", "lines", required=True, metavar="A-B",
              help="The lines to rewrite (1-based, inclusive).")
@click.option("--instruction", required=True,
              help="What to do, in words, or a ready one: "
                   + ", ".join(READY_INSTRUCTIONS) + ".")
@click.option("--write", is_flag=True, help="Apply the edit to FILE as well.")
@engine_option
def refactor(file: str, lines: str, instruction: str, write: bool,
             engine_url: str | None, context: str) -> None:
    """Rewrite lines of FILE as instructed; print the change as a unified diff.

    Example:

        covey refactor app.py --lines 10-24 --instruction early-return
    """
    first, last = _line_range(lines)
    document = read_document(file)
    row_first, row_last = _check_line(document, file, first), _check_line(document, file, last)
    where = Where(line=row_first, last_line=row_last, instruction=instruction)
    _write_edit(document, file, serve("refactor", document, where, engine_url, context),
                write)


COMMANDS = (complete, doc, refactor)
