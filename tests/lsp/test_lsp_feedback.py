"""What became of a suggestion, inferred by the server from the document changes alone (as
any LSP editor sends them, Neovim as much as VS Code): typing through it, accepting it word
by word, and whether accepted text is still there at each (shortened) horizon. The engine
is a scripted fake, so the suggestion is known; the outcome is read from the usage log."""

from __future__ import annotations

import asyncio

from helpers.fake_openai import FakeOpenAI, Scripted
from helpers.lsp_client import (
    PY_SOURCE,
    end_of,
    inline_params,
    open_doc,
    start_client,
    suggestion_row,
)
from lsprotocol import types

ANSWER = ["fib", "onacci(n - 1)", " + fibonacci(n - 2)"]
SUGGESTION = "".join(ANSWER)
URI = "file:///tmp/fib.py"
HORIZONS_S = [0.4, 1.2, 1.6]


class Editor:
    """The document as the client holds it, changed the way an editor sends changes."""

    def __init__(self, client):
        self.client, self.version = client, 1
        self.line, self.char = end_of(PY_SOURCE, "return n\n    return ")
        self.start = self.char
        open_doc(client, URI, PY_SOURCE)

    async def ask(self) -> str:
        result = await self.client.text_document_inline_completion_async(
            inline_params(URI, self.line, self.char))
        return result.items[0].insert_text if result.items else ""

    def change(self, start: int, end: int, text: str) -> None:
        """Replace characters ``start``..``end`` of the cursor's line with ``text``; the
        cursor goes to the end of it."""
        self.version += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(version=self.version, uri=URI),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(self.line, start),
                                  types.Position(self.line, end)), text=text)]))
        self.char = start + len(text)

    def type(self, text: str) -> None:
        self.change(self.char, self.char, text)


async def served(fake, horizons: list[float] | None = None):
    fake.by_model["completion"] = Scripted(tokens=ANSWER)
    options = {"engine": {"url": fake.url}, "debounceMs": 10,
               "specialists": {"completion": {"minShowLogprob": "-inf"}}}
    if horizons:
        options["retentionHorizonsS"] = horizons
    client = await start_client(options)
    editor = Editor(client)
    assert await editor.ask() == SUGGESTION
    for _ in range(100):  # the notification follows the response
        if client.calls:
            break
        await asyncio.sleep(0.05)
    (call,) = client.calls
    return client, editor, call.callId


async def test_typing_through_then_accepting_a_word_is_a_partial_accept():
    with FakeOpenAI("unused") as fake:
        client, editor, call_id = await served(fake)
        for ch in "fib":  # typed by hand; the server serves the rest from its cache
            editor.type(ch)
            assert await editor.ask() == SUGGESTION[editor.char - editor.start:]
        editor.type("onacci(")  # Accept Next Word
        editor.type("x")  # then the user goes their own way
        row = await suggestion_row(client, call_id)
    assert len(fake.completions()) == 1  # one model call throughout
    assert row["outcome"] == "partial"
    assert (row["typed_chars"], row["accepted_chars"], row["accepted_lines"]) == (3, 7, 1)
    assert row["shown_ms"] > 0 and row["shown_at"] > 0


async def test_a_suggestion_typed_over_is_ignored():
    with FakeOpenAI("unused") as fake:
        client, editor, call_id = await served(fake)
        editor.type("n")  # not what it said
        row = await suggestion_row(client, call_id)
    assert (row["outcome"], row["detail"], row["accepted_chars"]) == ("ignored", "typed-over", 0)


async def test_accepted_text_kept_past_the_first_horizon_then_deleted():
    with FakeOpenAI("unused") as fake:
        client, editor, call_id = await served(fake, HORIZONS_S)
        start = editor.char
        editor.type(SUGGESTION)  # Tab
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="covey.accept", arguments=[call_id]))
        await asyncio.sleep(HORIZONS_S[0] + 0.3)
        editor.change(start, start + len(SUGGESTION), "")  # the user deletes it
        await asyncio.sleep(HORIZONS_S[2] - HORIZONS_S[0] + 0.3)
        row = await suggestion_row(client, call_id)
    assert (row["outcome"], row["accepted_chars"]) == ("accepted", len(SUGGESTION))
    assert (row["retained_30s"], row["retained_120s"], row["retained_300s"]) == (1, 0, 0)
