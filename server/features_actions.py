"""Code actions: "Generate docstring" and "Refactor selection". Listing them is free; the
model is called only when one is chosen (``workspace/executeCommand``, features_commands)."""

from __future__ import annotations

import logging

from lsprotocol import types

from covey_server import protocol
from covey_specialists.tasks.common import EditError
from covey_specialists.tasks.doc import definition_at
from covey_specialists.tasks.refactor import READY_INSTRUCTIONS

log = logging.getLogger("covey.actions")



def range_json(rng: types.Range) -> dict:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}


def actions_for(doc, rng: types.Range) -> list[types.CodeAction]:
    actions = []
    try:
        node = definition_at(doc, rng.start.line)
        name_node = node.child_by_field_name("name")
        name = doc.source(name_node) if name_node is not None else "this definition"
        title = f"Covey: Generate docstring for {name}"
        actions.append(types.CodeAction(
            title=title, kind=types.CodeActionKind.RefactorRewrite,
            command=types.Command(title=title, command=protocol.GENERATE_DOCSTRING,
                                  arguments=[doc.uri, rng.start.line])))
    except EditError as exc:
        log.debug("no docstring action: %s", exc)
    if rng.start != rng.end:
        title = "Covey: Refactor selection…"
        actions.append(types.CodeAction(
            title=title, kind=types.CodeActionKind.RefactorRewrite,
            command=types.Command(title=title, command=protocol.REFACTOR,
                                  arguments=[doc.uri, range_json(rng), None])))
        for key, instruction in READY_INSTRUCTIONS.items():
            title = f"Covey: Refactor: {instruction.rstrip('.')}"
            actions.append(types.CodeAction(
                title=title, kind=types.CodeActionKind.RefactorRewrite,
                command=types.Command(title=title, command=protocol.REFACTOR,
                                      arguments=[doc.uri, range_json(rng), key])))
    return actions


def register(ls) -> None:
    kinds = [types.CodeActionKind.RefactorRewrite]

    @ls.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=kinds))
    def code_action(ls, params: types.CodeActionParams):
        doc = ls.require_session().store.get(params.text_document.uri)
        if doc is None or doc.is_binary:
            return []
        return actions_for(doc, params.range)
