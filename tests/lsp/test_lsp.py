"""End-to-end tests of the language server, driven by pytest-lsp over stdio.

The features run against the real engine (the ``engine`` fixture from tests/conftest.py),
asserting what holds for any answer. Where a test needs a given answer (the exact edit a
docstring or refactor makes, or an answer that must be refused) the engine is a scripted
fake (helpers/fake_openai.py); engine faults are in test_lsp_faults.py.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from helpers.engine_metrics import metric, wait_until_generating, wait_until_idle
from helpers.fake_openai import FakeOpenAI
from helpers.lsp_client import (
    PY_SOURCE,
    apply_workspace_edit,
    end_of,
    engine_options,
    inline_params,
    open_doc,
    start_client,
    stop_client,
)
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

# ---------------------------------------------------------------------- fixtures

@pytest_asyncio.fixture
async def client(engine):
    c = await start_client(engine_options(engine),
                           env={"COVEY_ENGINE_API_KEY": engine.api_key})
    yield c
    await stop_client(c)


@pytest_asyncio.fixture
async def long_client(engine):
    """A server whose completions run long, so they can be cancelled mid-generation."""
    opts = engine_options(engine, specialists={
        "completion": {"promptFormat": "prefix", "maxTokens": 600, "stop": [],
                       "extraBody": {"ignore_eos": True}, "timeoutS": 120.0}}, debounceMs=0)
    c = await start_client(opts, env={"COVEY_ENGINE_API_KEY": engine.api_key})
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


DOCSTRING = "Return the area of a circle of the given radius."
REFACTORED = """```python
def total(items):
    acc = 0
    for item in items:
        acc = acc + item
    return acc
```"""
TOTAL_LINES = (PY_SOURCE.splitlines().index("def total(items):"),
               PY_SOURCE.splitlines().index("def total(items):") + 5)


async def docstring_for_circle_area(client: LanguageClient, uri: str) -> dict:
    """List the code actions on circle_area's body, then run the docstring one."""
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
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=cmd.command, arguments=cmd.arguments))


async def refactor_total(client: LanguageClient, uri: str, instruction: str) -> dict:
    open_doc(client, uri, PY_SOURCE)
    first, end = TOTAL_LINES
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="covey.refactor",
        arguments=[uri, {"start": {"line": first, "character": 0},
                         "end": {"line": end, "character": 0}}, instruction]))


def covey_messages(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.message.startswith("Covey:")]


@pytest_asyncio.fixture
async def scripted():
    """A server whose engine is a scripted fake; ``fake.by_model`` sets its answers."""
    with FakeOpenAI("unused") as fake:
        c = await start_client({"engine": {"url": fake.url}, "debounceMs": 10})
        c.fake = fake
        yield c
        await stop_client(c)


async def test_docstring_command_applies_the_exact_edit(scripted):
    scripted.fake.by_model["doc"] = DOCSTRING
    uri = "file:///tmp/area.py"
    result = await docstring_for_circle_area(scripted, uri)
    assert result["applied"] is True and "reason" not in result
    (edit,) = scripted.applied_edits
    expected = PY_SOURCE.replace("def circle_area(radius):\n",
                                 f'def circle_area(radius):\n    """{DOCSTRING}"""\n')
    assert apply_workspace_edit(PY_SOURCE, edit, uri) == expected
    assert covey_messages(scripted) == []


async def test_docstring_command_refuses_an_empty_answer_with_one_message(scripted):
    scripted.fake.by_model["doc"] = "```\n```"
    result = await docstring_for_circle_area(scripted, "file:///tmp/area.py")
    assert result["applied"] is False and "no docstring" in result["reason"]
    assert scripted.applied_edits == []
    assert covey_messages(scripted) == [f"Covey: {result['reason']}"]


async def test_refactor_command_applies_the_exact_edit(scripted):
    scripted.fake.by_model["refactor"] = REFACTORED
    uri = "file:///tmp/total.py"
    result = await refactor_total(scripted, uri, "Rename the variable result to acc.")
    assert result["applied"] is True
    (edit,) = scripted.applied_edits
    assert apply_workspace_edit(PY_SOURCE, edit, uri) == PY_SOURCE.replace("result", "acc")
    body = scripted.fake.completions()[0].body
    assert body["model"] == "refactor" and "Rename the variable result to acc." in body["prompt"]


async def test_refactor_command_refuses_code_that_does_not_parse(scripted):
    scripted.fake.by_model["refactor"] = "```python\ndef total(items:\n    return sum(items\n```"
    result = await refactor_total(scripted, "file:///tmp/total.py", "Use sum().")
    assert result["applied"] is False and "does not parse" in result["reason"]
    assert scripted.applied_edits == []
    assert covey_messages(scripted) == [f"Covey: {result['reason']}"]


async def test_refactor_without_an_instruction_asks_for_one(scripted):
    first, _ = TOTAL_LINES
    uri = "file:///tmp/total.py"
    open_doc(scripted, uri, PY_SOURCE)
    rng = types.Range(types.Position(first, 0), types.Position(first + 5, 0))
    actions = await scripted.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri), range=rng,
        context=types.CodeActionContext(diagnostics=[])))
    titles = [a.title for a in actions]
    assert "Covey: Refactor selection…" in titles
    assert any(t.startswith("Covey: Refactor: Simplify") for t in titles)
    asked = await scripted.workspace_execute_command_async(types.ExecuteCommandParams(
        command="covey.refactor", arguments=[uri, {"start": {"line": first, "character": 0},
                                                   "end": {"line": first + 1, "character": 0}},
                                             None]))
    assert asked["applied"] is False and "instruction" in asked["reason"]
    assert scripted.fake.completions() == [] and scripted.calls == []


def check_any_edit_outcome(client: LanguageClient, result: dict, uri: str) -> str:
    """What holds for any model answer: an ``applied`` flag that matches the edits the
    client received, a reason and one message exactly when nothing was applied, and a
    document that still parses. Returns the document after the edits."""
    assert isinstance(result["applied"], bool)
    assert len(client.applied_edits) == int(result["applied"])
    assert bool(result.get("reason")) is not result["applied"]
    assert len(covey_messages(client)) == int(not result["applied"])
    assert client.calls, "the model was called for the chosen action"
    text = PY_SOURCE
    for edit in client.applied_edits:
        text = apply_workspace_edit(text, edit, uri)
    compile(text, uri, "exec")
    return text


async def test_docstring_command_with_the_real_engine(client: LanguageClient):
    uri = "file:///tmp/area.py"
    result = await docstring_for_circle_area(client, uri)
    new_text = check_any_edit_outcome(client, result, uri)
    # an edit only inserts a docstring block at the top of circle_area's body
    head, _, body = new_text.partition("def circle_area(radius):\n")
    assert head == PY_SOURCE.partition("def circle_area(radius):\n")[0]
    assert body.endswith(PY_SOURCE.partition("def circle_area(radius):\n")[2])
    inserted = body[: len(body) - len(PY_SOURCE.partition("def circle_area(radius):\n")[2])]
    assert inserted == "" or inserted.startswith('    """')
    assert (inserted != "") is result["applied"]


async def test_refactor_command_with_the_real_engine(client: LanguageClient):
    uri = "file:///tmp/total.py"
    result = await refactor_total(client, uri, "Rename the variable result to acc.")
    new_text = check_any_edit_outcome(client, result, uri)
    # only the selected lines may change
    assert new_text.startswith(PY_SOURCE.split("def total")[0])


async def test_superseded_and_cancelled_requests_are_answered_and_their_streams_closed(
        long_client, engine):
    """Each request may generate 600 tokens. The first is superseded by a second, which the
    client then cancels. Both are answered, and the engine generated fewer than 600 tokens
    for the two: a stream left open would have run to its 600 on any CPU, fast or slow, so
    closing the streams made vLLM stop generating.

    The cursor opens a block at column 0, so no later line can dedent below it and the
    server never ends the stream early, and the engine ignores end-of-text: whatever the
    model writes, only the cancellations stop it (a cursor inside ``def`` let a short
    answer finish first on a busy machine; on CI's processor the model once ended its
    answer before the second request could be seen generating)."""
    client = long_client
    uri = "file:///tmp/long.py"
    open_doc(client, uri, "for n in range(10):\n")
    tokens_before = metric(engine, "vllm:generation_tokens_total")
    first = asyncio.ensure_future(
        client.text_document_inline_completion_async(inline_params(uri, 1, 0)))
    await wait_until_generating(engine, 120)
    await asyncio.sleep(0.5)
    # a newer request for the same document supersedes the first: answered, empty
    second = asyncio.wrap_future(client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 0), msg_id="second"))
    assert (await asyncio.wait_for(first, 10)).items == ()
    await wait_until_generating(engine, 120)
    await asyncio.sleep(0.5)
    # the client cancels the second ($/cancelRequest): answered with RequestCancelled
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="second"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(second, 10)
    await wait_until_idle(engine)
    generated = metric(engine, "vllm:generation_tokens_total") - tokens_before
    # (the engine may be shared with other test runs; their tokens count here too, which
    # only makes this bound harder to meet)
    assert 0 < generated < 600, f"{generated} tokens generated for two cancelled requests"
    await asyncio.sleep(0.2)
    assert [c.status for c in client.calls] == ["cancelled", "cancelled"]




async def test_a_workspace_adapter_serves_only_the_files_under_its_folder(tmp_path):
    """``covey train completion REPO`` registers its adapter for REPO only: a file under
    the folder is served by it (its own served name, its own usage rows), any other by the
    general specialist."""
    repo = tmp_path / "repo"
    with FakeOpenAI("unused", models=["base", "completion", "completion@repo"],
                    by_model={"completion": "general()\n", "completion@repo": "own()\n"}) as fake:
        c = await start_client({"engine": {"url": fake.url}, "debounceMs": 0, "specialists": {
            "completion": {"workspaces": [{"root": str(repo), "adapter": str(tmp_path)}]}}})
        try:
            shown = []
            for uri in ((repo / "pkg" / "a.py").as_uri(), (tmp_path / "b.py").as_uri()):
                open_doc(c, uri, "x = \n")
                result = await c.text_document_inline_completion_async(inline_params(uri, 0, 4))
                shown.append([i.insert_text for i in result.items])
            await asyncio.sleep(0.2)
        finally:
            await stop_client(c)
        models = [r.wait().body["model"] for r in fake.completions()]
    assert shown == [["own()"], ["general()"]]
    assert models == ["completion@repo", "completion"]
    assert [call.specialist for call in c.calls] == ["completion@repo", "completion"]


async def test_a_workspace_adapter_the_engine_lacks_gives_way_to_the_general_one(tmp_path):
    repo = tmp_path / "repo"
    with FakeOpenAI("unused", models=["base", "completion"],
                    by_model={"completion": "general()\n", "base": "bare()\n"}) as fake:
        c = await start_client({"engine": {"url": fake.url}, "debounceMs": 0, "specialists": {
            "completion": {"workspaces": [{"root": str(repo), "adapter": str(tmp_path)}]}}})
        try:
            uri = (repo / "a.py").as_uri()
            open_doc(c, uri, "x = \n")
            result = await c.text_document_inline_completion_async(inline_params(uri, 0, 4))
        finally:
            await stop_client(c)
        models = [r.wait().body["model"] for r in fake.completions()]
    assert [i.insert_text for i in result.items] == ["general()"] and models == ["completion"]


async def test_typing_through_the_ghost_text_reuses_it_without_a_model_call(scripted):
    scripted.fake.reply = "sum(items)\n"
    uri = "file:///tmp/cache.py"
    source = "def total(items):\n    return \n"
    open_doc(scripted, uri, source)
    first = await scripted.text_document_inline_completion_async(inline_params(uri, 1, 11))
    assert [i.insert_text for i in first.items] == ["sum(items)"]
    assert len(scripted.fake.completions()) == 1
    # asked again at the same place and version: the same answer, no new request
    again = await scripted.text_document_inline_completion_async(inline_params(uri, 1, 11))
    assert [i.insert_text for i in again.items] == ["sum(items)"]
    # the user types "sum(": the rest of the suggestion, still without a request
    scripted.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(1, 11), types.Position(1, 11)), text="sum(")]))
    typed = await scripted.text_document_inline_completion_async(inline_params(uri, 1, 15))
    assert [i.insert_text for i in typed.items] == ["items)"]
    assert typed.items[0].command.arguments == first.items[0].command.arguments
    assert len(scripted.fake.completions()) == 1
    # typing something else asks the model again
    scripted.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(1, 15), types.Position(1, 15)), text="x")]))
    await scripted.text_document_inline_completion_async(inline_params(uri, 1, 16))
    assert len(scripted.fake.completions()) == 2
