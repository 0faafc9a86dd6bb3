"""End-to-end tests of the language server, driven by pytest-lsp over stdio.

The features run against the real engine (the ``engine`` fixture from tests/conftest.py, or
a dev engine at $COVEY_DEV_ENGINE_URL). Only the engine *faults* (slow, dropped, malformed
streams) use a fake OpenAI-compatible server, in test_lsp_faults.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import typing
from types import SimpleNamespace

import httpx
import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
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


# ---------------------------------------------------------------------- shared helpers

def dev_engine() -> SimpleNamespace | None:
    url = os.environ.get("COVEY_DEV_ENGINE_URL", "http://127.0.0.1:8765")
    key = os.environ.get("COVEY_DEV_ENGINE_KEY", "k")
    try:
        if httpx.get(f"{url}/health", timeout=2,
                     headers={"Authorization": f"Bearer {key}"}).status_code == 200:
            return SimpleNamespace(url=url, api_key=key)
    except httpx.HTTPError:
        pass
    return None


@pytest.fixture(scope="session")
def real_engine(request):
    """The engine fixture from tests/conftest.py when it exists, else the dev engine."""
    try:
        return request.getfixturevalue("engine")
    except pytest.FixtureLookupError:
        pass
    found = dev_engine()
    if found is None:
        pytest.skip("no engine: neither the `engine` fixture nor a dev engine is available")
    return found


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


async def start_client(init_options: dict, env: dict | None = None) -> LanguageClient:
    home = tempfile.mkdtemp(prefix="covey-lsp-home-")
    config = ClientServerConfig(server_command=SERVER, client_factory=make_client,
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


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "python",
             version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


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


def metric(engine, name: str, **labels) -> float:
    """Sum of a Prometheus counter from the engine's /metrics, over matching label sets."""
    body = httpx.get(f"{engine.url}/metrics", timeout=5,
                     headers={"Authorization": f"Bearer {engine.api_key}"}).text
    total = 0.0
    for line in body.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_until_generating(engine, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if metric(engine, "vllm:num_requests_running") > 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the engine never started generating")


# ---------------------------------------------------------------------- fixtures

def engine_options(engine, **extra) -> dict:
    # The untuned base continues plain code well; FIM markers need the completion adapter.
    specialists = {"completion": {"promptFormat": "prefix", "maxTokens": 24}}
    specialists.update(extra.pop("specialists", {}))
    return {"engine": {"url": engine.url}, "debounceMs": 10, "specialists": specialists,
            **extra}


@pytest_asyncio.fixture
async def client(real_engine):
    c = await start_client(engine_options(real_engine),
                           env={"COVEY_ENGINE_API_KEY": real_engine.api_key})
    yield c
    await stop_client(c)


@pytest_asyncio.fixture
async def long_client(real_engine):
    """A server whose completions run long, so they can be cancelled mid-generation."""
    opts = engine_options(real_engine, specialists={
        "completion": {"promptFormat": "prefix", "maxTokens": 600, "stop": [],
                       "timeoutS": 120.0}}, debounceMs=0)
    c = await start_client(opts, env={"COVEY_ENGINE_API_KEY": real_engine.api_key})
    yield c
    await stop_client(c)


# ---------------------------------------------------------------------- tests

async def test_capabilities(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.code_action_provider is not None
    commands = set(caps.execute_command_provider.commands)
    assert {"covey.generateDocstring", "covey.refactor", "covey.accept", "covey.reject",
            "covey.engineStart", "covey.engineStop"} <= commands
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental


async def test_inline_completion_continues_the_document(client: LanguageClient):
    uri = "file:///tmp/fib.py"
    open_doc(client, uri, PY_SOURCE)
    line, char = end_of(PY_SOURCE, "return n\n    return ")
    result = await client.text_document_inline_completion_async(inline_params(uri, line, char))
    assert len(result.items) == 1
    item = result.items[0]
    text = item.insert_text
    assert text.strip(), "a completion with text"
    assert "\n" not in text, "a cursor mid-statement gets one line"
    assert item.range.start == types.Position(line, char) == item.range.end
    # it continues the code: the recursive call (greedy decoding of the shipped base model),
    # or at least something that compiles after the prefix
    completed = PY_SOURCE[: PY_SOURCE.index("    return \n") + len("    return ")] + text
    try:
        compile(completed.split("\n\n\ndef total")[0], "fib.py", "exec")
    except SyntaxError:
        assert "fibonacci(" in text, text
    assert item.command.command == "covey.accept"
    call_id = item.command.arguments[0]
    # one covey/callFinished for the call, with its timings
    await asyncio.sleep(0.2)
    finished = [c for c in client.calls if c.callId == call_id]
    assert finished and finished[0].status == "ok" and finished[0].task == "completion"
    assert finished[0].latencyMs > 0 and finished[0].completionTokens > 0
    accepted = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="covey.accept", arguments=[call_id]))
    assert accepted["accepted"] is True


async def test_completion_after_typing(client: LanguageClient):
    """Incremental changes reach the parser: the cursor after newly typed text completes."""
    uri = "file:///tmp/typed.py"
    open_doc(client, uri, "import os\n\n")
    typed = "def list_python_files(folder):\n    return [name for name in os.listdir("
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(2, 0), types.Position(2, 0)), text=typed)]))
    line, char = end_of("import os\n\n" + typed, "os.listdir(")
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri), position=types.Position(line, char)))
    assert len(result.items) == 1
    assert result.items[0].text_edit.new_text.strip()


async def test_no_model_call_where_it_cannot_help(client: LanguageClient):
    uri = "file:///tmp/quiet.py"
    text = "x = 1  # a comment\nname = 'inside a string'\nvalue = compute\n"
    open_doc(client, uri, text)
    spots = [end_of(text, "# a comm"), end_of(text, "'inside a"), end_of(text, "comp")]
    for line, char in spots:
        result = await client.text_document_inline_completion_async(
            inline_params(uri, line, char))
        assert result.items == ()
    assert client.calls == [], "the model was not called"


async def test_docstring_action_applies_an_edit_that_parses(client: LanguageClient):
    uri = "file:///tmp/area.py"
    open_doc(client, uri, PY_SOURCE)
    line = PY_SOURCE.splitlines().index("def circle_area(radius):")
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri),
        range=types.Range(types.Position(line + 1, 4), types.Position(line + 1, 4)),
        context=types.CodeActionContext(diagnostics=[])))
    docstring = [a for a in actions if "docstring" in a.title]
    assert docstring and docstring[0].command.command == "covey.generateDocstring"
    assert not client.calls, "listing actions calls no model"
    cmd = docstring[0].command
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=cmd.command, arguments=cmd.arguments))
    assert client.calls, "the model was called for the chosen action"
    if result["applied"]:
        new_text = apply_workspace_edit(PY_SOURCE, client.applied_edits[-1], uri)
        compile(new_text, "area.py", "exec")
        body = new_text.split("def circle_area(radius):\n", 1)[1]
        assert body.startswith('    """')
    else:  # the model's text did not make a valid docstring: refused, with one message
        assert not client.applied_edits
        assert sum("Covey:" in m.message for m in client.messages) == 1


async def test_refactor_command_applies_an_edit_that_parses(client: LanguageClient):
    uri = "file:///tmp/total.py"
    open_doc(client, uri, PY_SOURCE)
    lines = PY_SOURCE.splitlines()
    first = lines.index("def total(items):")
    rng = types.Range(types.Position(first, 0), types.Position(first + 5, 0))
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri), range=rng,
        context=types.CodeActionContext(diagnostics=[])))
    titles = [a.title for a in actions]
    assert "Covey: Refactor selection…" in titles
    assert any(t.startswith("Covey: Refactor: Simplify") for t in titles)
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="covey.refactor",
        arguments=[uri, {"start": {"line": first, "character": 0},
                         "end": {"line": first + 5, "character": 0}},
                   "Rename the variable result to acc."]))
    if result["applied"]:
        new_text = apply_workspace_edit(PY_SOURCE, client.applied_edits[-1], uri)
        compile(new_text, "total.py", "exec")
        assert new_text.startswith(PY_SOURCE.split("def total")[0])
    else:
        assert result["reason"] and not client.applied_edits
    # a refactor without an instruction asks for one instead of calling the model
    before = len(client.calls)
    asked = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="covey.refactor", arguments=[uri, {"start": {"line": first, "character": 0},
                                                   "end": {"line": first + 1, "character": 0}},
                                             None]))
    assert asked["applied"] is False and "instruction" in asked["reason"]
    assert len(client.calls) == before


async def test_superseded_and_cancelled_requests_are_answered_and_their_streams_closed(
        long_client, real_engine):
    """Each request may generate 600 tokens. The first is superseded by a second, which the
    client then cancels. Both are answered, and the engine's generated-token counter stops
    far short of 2 × 600: closing the streams made vLLM stop generating."""
    client = long_client
    uri = "file:///tmp/long.py"
    open_doc(client, uri, "def fibonacci(n):\n    ")
    tokens_before = metric(real_engine, "vllm:generation_tokens_total")
    first = asyncio.ensure_future(
        client.text_document_inline_completion_async(inline_params(uri, 1, 4)))
    await wait_until_generating(real_engine)
    await asyncio.sleep(0.5)
    # a newer request for the same document supersedes the first: answered, empty
    second = asyncio.wrap_future(client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 4), msg_id="second"))
    assert (await asyncio.wait_for(first, 10)).items == ()
    await wait_until_generating(real_engine)
    await asyncio.sleep(0.5)
    # the client cancels the second ($/cancelRequest): answered with RequestCancelled
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="second"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(second, 10)
    await wait_until_idle(real_engine)
    generated = metric(real_engine, "vllm:generation_tokens_total") - tokens_before
    # (the engine may be shared with other test runs; their tokens count here too, which
    # only makes this bound harder to meet)
    assert 0 < generated < 300, f"{generated} tokens generated for two cancelled requests"
    await asyncio.sleep(0.2)
    assert [c.status for c in client.calls] == ["cancelled", "cancelled"]


async def wait_until_idle(engine, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if metric(engine, "vllm:num_requests_running") == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the engine kept generating")


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
