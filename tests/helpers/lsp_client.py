"""A pytest-lsp client for the Covey server, and what the LSP tests share: starting and
stopping it, documents, positions, applying the edits it receives."""

from __future__ import annotations

import os
import sys
import tempfile
import typing

import sqlite_utils
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

SERVER = [sys.executable, "-m", "covey_server", "-vv"]

PY_SOURCE = '''import math


def circle_area(radius):
    return math.pi * radius * radius


def fibonacci(n):
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return <CURSOR>


def total(items):
    result = 0
    for item in items:
        result = result + item
    return result
'''.replace("<CURSOR>", "")


def capabilities() -> types.ClientCapabilities:
    """VS Code's capabilities, plus inline completion (the snapshot predates it)."""
    caps = client_capabilities("visual-studio-code")
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


def make_client() -> LanguageClient:
    client = make_test_lsp_client()
    client.applied_edits = []
    client.calls = []
    client.engine_statuses = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(ls, params: types.ApplyWorkspaceEditParams):
        client.applied_edits.append(params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature("covey/callFinished")
    def call_finished(ls, params):
        client.calls.append(params)

    @client.feature("covey/engineStatus")
    def engine_status(ls, params):
        client.engine_statuses.append(params)

    # lsprotocol 2025 parses any CodeAction with a `command` field as a Command.
    conv = client.protocol._converter
    conv.register_structure_hook(
        typing.Union[types.Command, types.CodeAction],  # noqa: UP007 - lsprotocol's own key
        lambda o, _: conv.structure(
            o, types.Command if isinstance(o.get("command"), str) else types.CodeAction))
    return client


async def start_client(init_options: dict, env: dict | None = None,
                       server_log: bool = True) -> LanguageClient:
    """A started, initialized client; ``server_log`` runs the server at debug level, for
    the log pytest shows of a failing test (a benchmark wants its own output alone)."""
    home = tempfile.mkdtemp(prefix="covey-lsp-home-")
    command = SERVER if server_log else [arg for arg in SERVER if arg != "-vv"]
    config = ClientServerConfig(server_command=command, client_factory=make_client,
                                server_env={**os.environ, "COVEY_HOME": home, **(env or {})})
    client = await config.start()
    client.covey_home = home
    client.init_result = await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), initialization_options=init_options,
        root_uri="file:///tmp"))
    return client


async def stop_client(client: LanguageClient) -> None:
    await client.shutdown_session()
    await client.stop()


async def suggestion_row(client: LanguageClient, call_id: str) -> dict:
    """The usage log's ``suggestions`` row of a call, read after stopping the client (the
    session's log is flushed when it shuts down)."""
    await stop_client(client)
    db = sqlite_utils.Database(os.path.join(client.covey_home, "usage.db"))
    try:
        return db["suggestions"].get(call_id)
    finally:
        db.close()


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python",
             version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


def type_at(client: LanguageClient, uri: str, version: int, line: int, character: int,
            text: str) -> None:
    """Send the ``didChange`` an editor sends when ``text`` is typed at (line, character)."""
    at = types.Position(line, character)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(at, at),
                                                                text=text)]))


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri), position=types.Position(line, character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic))


def end_of(text: str, needle: str) -> tuple[int, int]:
    """(line, character) just after the first ``needle`` in ``text``."""
    offset = text.index(needle) + len(needle)
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def engine_options(engine, **extra) -> dict:
    """The real engine's settings for a test server; ``specialists`` entries are merged in.

    The untuned base continues plain code well; FIM markers need the completion adapter.
    The confidence filter is off: these tests need an answer however sure the model is."""
    specialists = {"completion": {"promptFormat": "prefix", "maxTokens": 24,
                                  "minShowLogprob": "-inf"}}
    for key, fields in extra.pop("specialists", {}).items():
        specialists[key] = {**specialists.get(key, {}), **fields}
    return {"engine": {"url": engine.url}, "debounceMs": 10, "specialists": specialists,
            **extra}


def apply_workspace_edit(text: str, edit: types.WorkspaceEdit, uri: str) -> str:
    """Apply a single-document WorkspaceEdit (``changes`` or ``documentChanges``) to text."""
    if edit.document_changes:
        edits = [e for dc in edit.document_changes if dc.text_document.uri == uri
                 for e in dc.edits]
    else:
        edits = edit.changes[uri]
    lines = text.splitlines(keepends=True)

    def offset(pos: types.Position) -> int:
        return sum(len(ln) for ln in lines[:pos.line]) + pos.character

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                    reverse=True):
        text = text[: offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text
