"""``workspace/executeCommand``: docstring and refactor (answered by ``workspace/applyEdit``),
and accept/reject of a suggestion. Arguments are positional (docs/lsp-protocol.md)."""

from __future__ import annotations

import logging

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from covey_server import protocol
from covey_specialists.tasks import Where
from covey_specialists.tasks.common import Edit, EditError

log = logging.getLogger("covey.commands")


def _arg(args: tuple, index: int, kind, name: str, optional: bool = False):
    value = args[index] if index < len(args) else None
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise JsonRpcInvalidParams(f"argument {index + 1} ({name}) must be "
                                   f"{getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _document(session, uri: str):
    doc = session.store.get(uri)
    if doc is None:
        raise JsonRpcInvalidParams(f"{uri} is not open")
    return doc


def line_span(rng: dict) -> tuple[int, int]:
    """The whole lines a selection covers (a selection ending at column 0 stops before)."""
    try:
        first, last = int(rng["start"]["line"]), int(rng["end"]["line"])
        end_char = int(rng["end"]["character"])
    except (KeyError, TypeError, ValueError):
        raise JsonRpcInvalidParams(f"range must be an LSP Range, got {rng!r}") from None
    if last > first and end_char == 0:
        last -= 1
    return first, last


def workspace_edit(ls, doc, edit: Edit) -> types.WorkspaceEdit:
    rng = types.Range(types.Position(*doc.position_at(edit.start)),
                      types.Position(*doc.position_at(edit.end)))
    text_edit = types.TextEdit(range=rng, new_text=edit.new_text)
    caps = ls.client_capabilities.workspace
    if caps and caps.workspace_edit and caps.workspace_edit.document_changes:
        ident = types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
        return types.WorkspaceEdit(document_changes=[
            types.TextDocumentEdit(text_document=ident, edits=[text_edit])])
    return types.WorkspaceEdit(changes={doc.uri: [text_edit]})


async def run_edit(ls, doc, task: str, where: Where) -> dict:
    """Ask the model for ``task`` at ``where``, turn its answer into an edit and ask the
    client to apply it.

    Works on a snapshot, so typing during the call cannot shift the edit; if the document did
    change, the edit is not sent and the user is told to try again.
    """
    session = ls.require_session()
    snapshot = doc.snapshot()
    try:
        served = await session.router.serve(task, snapshot, where,
                                            workspace=session.workspace.context(doc.uri))
    except EditError as exc:
        return refuse(ls, f"{task}: {exc}")
    label = served.module.label(served.plan)
    call_id = served.call.id
    try:
        edit = served.edit()
    except EditError as exc:
        return refuse(ls, f"{label}: {exc}", call_id)
    if session.store.get(doc.uri) is not doc or doc.version != snapshot.version:
        return refuse(ls, f"{label}: the document changed while the model worked; try again",
                      call_id)
    response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
        edit=workspace_edit(ls, snapshot, edit), label=f"Covey: {label}"))
    applied = bool(response and response.applied)
    if not applied:
        log.info("client did not apply the %s edit: %s", label,
                 getattr(response, "failure_reason", None))
    return {"applied": applied, "callId": call_id}


def refuse(ls, message: str, call_id: str | None = None) -> dict:
    ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning,
                                                   f"Covey: {message}"))
    return {"applied": False, "callId": call_id, "reason": message}


def register(ls) -> None:
    @ls.command(protocol.GENERATE_DOCSTRING)
    async def generate_docstring(ls, *args):
        session = ls.require_session()
        doc = _document(session, _arg(args, 0, str, "uri"))
        line = _arg(args, 1, int, "line")
        return await run_edit(ls, doc, "doc", Where(line=line))

    @ls.command(protocol.REFACTOR)
    async def refactor(ls, *args):
        session = ls.require_session()
        doc = _document(session, _arg(args, 0, str, "uri"))
        first, last = line_span(_arg(args, 1, dict, "range"))
        instruction = _arg(args, 2, str, "instruction", optional=True)
        if instruction is None:
            return refuse(ls, "Refactor selection needs an instruction; pick a ready "
                          "refactoring or send covey.refactor with one")
        return await run_edit(ls, doc, "refactor",
                              Where(line=first, last_line=last, instruction=instruction))

    @ls.command(protocol.ACCEPT)
    def accept(ls, *args):
        session = ls.require_session()
        session.sink.mark_accepted(_arg(args, 0, str, "callId"), True)
        session.feedback.accepted(args[0])
        return {"callId": args[0], "accepted": True}

    @ls.command(protocol.REJECT)
    def reject(ls, *args):
        session = ls.require_session()
        session.sink.mark_accepted(_arg(args, 0, str, "callId"), False)
        session.feedback.rejected(args[0])
        session.next_edits.rejected(args[0])
        return {"callId": args[0], "accepted": False}
