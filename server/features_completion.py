"""Inline completion (LSP 3.18) and plain completion, both from the completion specialist."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lsprotocol import types

from covey_server import protocol
from covey_server.triggers import trigger_at
from covey_specialists.document import Document
from covey_specialists.tasks import Where

log = logging.getLogger("covey.completion")

KINDS = ("inline", "completion")


def key(uri: str, kind: str) -> str:
    """Scheduler key: one latest-wins queue per document and request kind."""
    return f"{kind}:{uri}"


@dataclass(frozen=True)
class Suggestion:
    text: str
    call_id: str
    offset: int
    """Where the text goes (the cursor), as a string index of the document."""


async def suggest(ls, uri: str, position: types.Position, kind: str) -> Suggestion | None:
    """The completion at ``position``, or ``None`` wherever there is nothing useful to say."""
    session = ls.require_session()
    doc = session.store.get(uri)
    if doc is None or not _enabled(session, doc):
        return None
    offset = doc.offset_at(position.line, position.character, clamp=False)
    if offset is None:
        log.info("position %s:%s is outside %s", position.line, position.character, uri)
        return None
    queue = key(uri, kind)
    hit = session.cache.lookup(queue, doc.version, doc.text, offset)
    if hit is not None:  # typing through the ghost text, or asked again: no model call
        session.scheduler.cancel(queue)
        session.feedback.shown(uri, hit.call_id, offset, hit.text)
        return Suggestion(hit.text, hit.call_id, offset)
    ahead = session.next_edits.insertion_at(uri, offset)
    if ahead is not None:  # the next edit proposed is text at the cursor: show it here too
        return Suggestion(*ahead, offset)
    trigger = trigger_at(doc, offset)
    if not trigger.call:
        log.debug("no completion at %s:%s: %s", position.line, position.character,
                  trigger.reason)
        return None
    version = doc.version

    def still_current() -> bool:
        return session.store.get(uri) is doc and doc.version == version

    async def work() -> Suggestion | None:
        served = await session.router.serve(
            "completion", doc, Where(offset=offset, multiline=trigger.multiline),
            workspace=session.workspace.context(uri))
        edit = served.shown()
        if edit is None:
            log.info("no completion at %s:%s: %s", position.line, position.character,
                     served.routed.why)
        if edit is None or not still_current():
            return None
        return Suggestion(edit.new_text, served.call.id, offset)

    found = await session.scheduler.run(queue, work, still_current)
    if found is None or not still_current():
        return None
    session.cache.remember(queue, uri, version, doc.text, offset, found.text, found.call_id)
    session.feedback.shown(uri, found.call_id, offset, found.text)
    return found


def _enabled(session, doc: Document) -> bool:
    if doc.language is None or doc.is_binary:
        return False
    if len(doc.text) > session.config.max_document_bytes:
        log.info("%s is too large to complete (%d characters)", doc.uri, len(doc.text))
        return False
    return doc.language in session.config.languages


def _accept_command(call_id: str) -> types.Command:
    return types.Command(title="Accept", command=protocol.ACCEPT, arguments=[call_id])


def register(ls) -> None:
    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls, params: types.InlineCompletionParams):
        found = await suggest(ls, params.text_document.uri, params.position, "inline")
        if found is None:
            return types.InlineCompletionList(items=[])
        here = types.Range(params.position, params.position)
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=found.text, range=here, command=_accept_command(found.call_id))])

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]))
    async def completion(ls, params: types.CompletionParams):
        found = await suggest(ls, params.text_document.uri, params.position, "completion")
        if found is None:
            return types.CompletionList(is_incomplete=True, items=[])
        doc = ls.require_session().store.get(params.text_document.uri)
        return types.CompletionList(is_incomplete=True, items=[_item(doc, found)])


def _item(doc: Document, found: Suggestion) -> types.CompletionItem:
    """The suggestion as an item replacing the word before the cursor (so clients filter
    on what was typed), with the accept command."""
    line_start = doc.text.rfind("\n", 0, found.offset) + 1
    before = doc.text[line_start:found.offset]
    word = len(before) - len(before.rstrip("_abcdefghijklmnopqrstuvwxyz"
                                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    start = found.offset - word
    typed = doc.text[start:found.offset]
    new_text = typed + found.text
    rng = types.Range(types.Position(*doc.position_at(start)),
                      types.Position(*doc.position_at(found.offset)))
    label = new_text.strip().split("\n", 1)[0][:60] or new_text
    return types.CompletionItem(
        label=label, kind=types.CompletionItemKind.Snippet, detail="Covey",
        filter_text=new_text, sort_text="0",
        text_edit=types.TextEdit(range=rng, new_text=new_text),
        insert_text_format=types.InsertTextFormat.PlainText,
        command=_accept_command(found.call_id))
