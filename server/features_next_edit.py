"""``covey/nextEdit``: the next edit the user's recent edits imply (docs/lsp-protocol.md).

Asked after an edit pause, debounced and superseded like completion (one queue per
document); answered ``null`` unless the last edit could imply another and the specialist,
past the show filter, proposes a change. The answer is the lines that change, as a range,
its new text, the same as a ``WorkspaceEdit``, and the call id that ``covey.accept`` and
``covey.reject`` name.
"""

from __future__ import annotations

import logging

from lsprotocol import types
from lsprotocol.converters import get_converter
from pygls.exceptions import JsonRpcInvalidParams

from covey_server import protocol
from covey_server.features_commands import workspace_edit
from covey_specialists.edit_history import implies_more
from covey_specialists.tasks import Where
from covey_specialists.tasks.common import EditError
from covey_specialists.tasks.next_edit import changed_lines

log = logging.getLogger("covey.next_edit")
# Only the document's own edits are sent. The adapter learned from one-file sequences;
# with the edits of 60 other files before them, benchmarks/bench_next_edit.py got no
# proposal in 60 (the history keeps every document's edits for when it learns them).
_converter = get_converter()


def key(uri: str) -> str:
    """Scheduler key: one latest-wins queue of next-edit requests per document."""
    return f"next-edit:{uri}"


def _position(params) -> tuple[str, int, int]:
    get = (lambda o, k: o.get(k)) if isinstance(params, dict) else getattr
    try:
        uri = get(get(params, "textDocument"), "uri")
        position = get(params, "position")
        line, character = get(position, "line"), get(position, "character")
    except (AttributeError, TypeError):
        uri = line = character = None
    if not isinstance(uri, str) or not isinstance(line, int) or not isinstance(character, int):
        raise JsonRpcInvalidParams("covey/nextEdit takes {textDocument: {uri}, position}")
    return uri, line, character


async def next_edit(ls, uri: str, line: int, character: int) -> dict | None:
    session = ls.require_session()
    doc = session.store.get(uri)
    if doc is None or doc.language is None or doc.is_binary or \
            doc.language not in session.config.languages or not session.config.next_edit:
        return None
    last = session.edits.last(uri)
    if last is None or not implies_more(last):
        return None  # plain typing, or nothing edited yet
    # the window is the one around the last edit (the cursor is usually in it)
    offset = doc.offset_at(last.line, 0)
    queue = key(uri)
    version = doc.version

    def still_current() -> bool:
        return session.store.get(uri) is doc and doc.version == version

    async def work():
        try:
            served = await session.router.serve(
                "next-edit", doc, Where(offset=offset, edits=session.edits.recent(uri)),
                workspace=session.workspace.context(uri))
        except EditError as exc:
            log.info("no next edit in %s: %s", uri, exc)
            return None
        edit = served.shown()
        if edit is None:
            log.info("no next edit in %s: %s", uri, served.routed.why)
            return None
        return (changed_lines(doc, edit), served.call.id) if still_current() else None

    found = await session.next_edit_scheduler.run(queue, work, still_current)
    if found is None or not still_current():
        return None
    edit, call_id = found
    session.next_edits.shown(uri, call_id, edit, doc.text[edit.start:edit.end])
    rng = types.Range(types.Position(*doc.position_at(edit.start)),
                      types.Position(*doc.position_at(edit.end)))
    return {"callId": call_id, "uri": uri, "range": _converter.unstructure(rng),
            "newText": edit.new_text,
            "edit": _converter.unstructure(workspace_edit(ls, doc, edit))}


def register(ls) -> None:
    @ls.feature(protocol.NEXT_EDIT)
    async def next_edit_request(ls, params=None):
        ls.require_session()
        return await next_edit(ls, *_position(params))
