"""``covey/nextEdit`` through a real LSP client, with a scripted engine (what the model
says is not the point here: the edit history, the request, the answer's shape and the
outcomes logged are)."""

import asyncio
from pathlib import Path

import pytest
import sqlite_utils
from helpers.fake_openai import FakeOpenAI
from helpers.lsp_client import open_doc, start_client, stop_client, suggestion_row
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from covey_specialists.table import load_table

URI = "file:///tmp/scale.py"
SOURCE = """def scale(points, factor):
    out = []
    for p in points:
        out.append(p * factor)
    log("scaled", len(out))
    log("factor", factor)
    return out
"""
# window lines are file lines + 1 here (the window starts at line 0)
ANSWER = "4|        out.append(p * size)\n6|    log(\"factor\", size)"
NEXT = "next-edit"


class Editor:
    def __init__(self, client):
        self.client, self.version, self.text = client, 1, SOURCE
        open_doc(client, URI, SOURCE)

    def replace(self, line: int, start: int, end: int, text: str) -> None:
        self.version += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(version=self.version, uri=URI),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(line, start), types.Position(line, end)),
                text=text)]))

    def rename_parameter(self) -> None:
        """``factor`` → ``size`` in the signature, one keystroke at a time."""
        at = SOURCE.index("factor")
        self.replace(0, at, at + len("factor"), "")
        for i, ch in enumerate("size"):
            self.replace(0, at + i, at + i, ch)

    async def ask(self, line: int = 0, character: int = 22):
        return await self.client.protocol.send_request_async(NEXT_EDIT, {
            "textDocument": {"uri": URI}, "position": {"line": line, "character": character}})


NEXT_EDIT = "covey/nextEdit"


async def session(fake):
    fake.by_model[load_table().for_task(NEXT).served_name] = ANSWER
    client = await start_client({"engine": {"url": fake.url},
                                 "specialists": {NEXT: {"minShowLogprob": "-inf"}}})
    return client, Editor(client)


async def test_a_renamed_parameter_gets_its_other_uses_proposed_and_the_accept_is_logged():
    with FakeOpenAI("unused") as fake:
        client, editor = await session(fake)
        editor.rename_parameter()
        found = await editor.ask()
        (request,) = fake.completions()
        prompt = request.body["prompt"]
        assert ("scale.py:1\n<<<<<<< original\ndef scale(points, factor):\n=======\n"
                "def scale(points, size):\n>>>>>>> updated") in prompt
        assert "1|def scale(points, size):\n" in prompt
        # the lines that change, and the one between them, as one range of whole lines
        assert (found.range.start.line, found.range.start.character) == (3, 0)
        assert (found.range.end.line, found.range.end.character) == (6, 0)
        assert found.newText == ('        out.append(p * size)\n    log("scaled", len(out))\n'
                                 '    log("factor", size)\n')
        (document_edit,) = found.edit.documentChanges  # VS Code takes versioned edits
        assert (document_edit.textDocument.uri, document_edit.textDocument.version) == (
            URI, editor.version)
        (change,) = document_edit.edits
        assert change.newText == found.newText
        editor.version += 1  # Tab: the editor applies the edit as proposed
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(version=editor.version,
                                                                uri=URI),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(3, 0), types.Position(6, 0)),
                text=found.newText)]))
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="covey.accept", arguments=[found.callId]))
        row = await suggestion_row(client, found.callId)
    assert (row["outcome"], row["accepted_chars"]) == ("accepted", len(found.newText))


async def test_plain_typing_at_the_end_of_a_line_asks_nothing():
    with FakeOpenAI("unused") as fake:
        client, editor = await session(fake)
        try:
            assert await editor.ask() is None  # nothing edited yet
            end = len("    return out")
            editor.replace(6, end, end, "  # scaled")
            assert await editor.ask(6, end) is None
            assert fake.completions() == []
        finally:
            await stop_client(client)


async def test_a_dismissed_edit_is_rejected_and_one_typed_over_is_ignored():
    with FakeOpenAI("unused") as fake:
        client, editor = await session(fake)
        editor.rename_parameter()
        dismissed = await editor.ask()
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="covey.reject", arguments=[dismissed.callId]))
        editor.replace(1, 4, 7, "result")  # a new edit elsewhere: `out` → `result`
        ignored = await editor.ask(1, 10)
        editor.replace(2, 4, 4, "#")  # the user goes on typing somewhere else
        await asyncio.sleep(0.2)
        await stop_client(client)
        db = sqlite_utils.Database(Path(client.covey_home) / "usage.db")
        rows = {r["call_id"]: r for r in db["suggestions"].rows}
        db.close()
    assert rows[dismissed.callId]["outcome"] == "rejected"
    assert (rows[ignored.callId]["outcome"], rows[ignored.callId]["detail"]) == (
        "ignored", "typed-over")


async def test_a_malformed_request_or_answer_gets_null_or_an_error_and_the_server_lives():
    with FakeOpenAI("unused") as fake:
        client, editor = await session(fake)
        try:
            with pytest.raises(JsonRpcInvalidParams):
                await client.protocol.send_request_async(NEXT_EDIT, {"position": 3})
            fake.by_model[load_table().for_task(NEXT).served_name] = "sure! here you go:\n99|x"
            editor.rename_parameter()
            assert await editor.ask() is None
            assert len(fake.completions()) == 1
            fake.by_model[load_table().for_task(NEXT).served_name] = ANSWER
            editor.replace(0, 0, 0, "")
            assert (await editor.ask()).newText.startswith("        out.append(p * size)")
        finally:
            await stop_client(client)


async def test_a_next_edit_at_the_cursor_is_also_the_ghost_text_there():
    with FakeOpenAI("unused") as fake:
        fake.by_model[load_table().for_task(NEXT).served_name] = \
            '4|    log("factor", factor, file=sys.stderr)'  # the window starts at line 2
        client = await start_client({"engine": {"url": fake.url}, "specialists": {
            NEXT: {"minShowLogprob": "-inf"}, "completion": {"minShowLogprob": "-inf"}}})
        editor = Editor(client)
        at = len('    log("scaled", len(out)')
        editor.replace(4, at, at, ", file=sys.stderr")
        found = await editor.ask(4, at)
        assert (found.range.start.line, found.range.end.line) == (5, 6)
        cursor = len('    log("factor", factor')
        ghost = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(URI),
            position=types.Position(5, cursor),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        (item,) = ghost.items
        assert item.insert_text == ", file=sys.stderr"
        assert len(fake.completions()) == 1  # the next edit's call, not a completion's
        editor.replace(5, cursor, cursor, item.insert_text)  # Tab on the ghost text
        row = await suggestion_row(client, found.callId)
    assert (row["outcome"], row["accepted_chars"]) == ("accepted", len(found.newText))
