"""TypeScript (and TSX) documents parse, and get JavaScript's triggers, scopes and imports."""

from __future__ import annotations

import pytest

from covey_server.config import ServerConfig
from covey_server.triggers import trigger_at
from covey_specialists.document import (
    DocumentStore,
    enclosing_scopes,
    imports,
    language_for,
    syntax_for,
)
from covey_specialists.tasks.doc import definition_at

TS = '''import { readFile } from "fs";
import type { Options } from "./options";

abstract class Shape<T> {
  abstract area(): number;
  scale(k: number): this {
    // grow
    const label = `x${k}`;
    return this;
  }
}

export function add(a: number, b: number): number {
  const n = <number>a;
  let total: number = n + b
  return total
}
'''

TSX = '''import React from "react";

export function Hello(props: { name: string }): JSX.Element {
  return <div>{props.name}</div>;
}
'''


def at(src: str, needle: str) -> int:
    return src.index(needle) + len(needle)


@pytest.mark.parametrize(("language_id", "path", "language", "syntax"), [
    ("typescript", "file:///x/a.ts", "typescript", "typescript"),
    ("typescriptreact", "file:///x/a.tsx", "typescript", "tsx"),
    ("typescriptreact", "untitled:Untitled-1", "typescript", "tsx"),
    (None, "file:///x/a.ts", "typescript", "typescript"),
    (None, "file:///x/lib.mts", "typescript", "typescript"),
    (None, "file:///x/App.TSX", "typescript", "tsx"),
    ("javascriptreact", "file:///x/a.jsx", "javascript", "javascript"),
])
def test_language_and_grammar_for(language_id, path, language, syntax):
    assert language_for(language_id, path) == language
    assert syntax_for(language_for(language_id, path), language_id, path) == syntax


def test_typescript_is_enabled_by_default_under_the_name_documents_get():
    doc = DocumentStore().open("file:///x/a.ts", TS, "typescript")
    assert doc.language in ServerConfig().languages


@pytest.mark.parametrize(("uri", "language_id", "src"), [
    ("file:///x/a.ts", "typescript", TS),    # `<number>a` is a cast only without JSX
    ("file:///x/a.tsx", "typescriptreact", TSX),
    ("untitled:Untitled-1", "typescriptreact", TSX),
])
def test_typescript_documents_parse_cleanly(uri, language_id, src):
    doc = DocumentStore().open(uri, src, language_id)
    assert doc.tree is not None
    assert not doc.tree.root_node.has_error


def test_typescript_scopes_imports_and_docstring_target():
    doc = DocumentStore().open("file:///x/a.ts", TS, "typescript")
    scopes = enclosing_scopes(doc, TS.index("return this"))
    assert [(s.kind, s.name) for s in scopes] == [("function", "scale"), ("class", "Shape")]
    assert imports(doc) == ('import { readFile } from "fs";',
                            'import type { Options } from "./options";')
    line = TS[:TS.index("let total")].count("\n")
    assert definition_at(doc, line).type == "function_declaration"


def test_triggers_on_a_typescript_file():
    doc = DocumentStore().open("file:///x/a.ts", TS, "typescript")
    assert trigger_at(doc, at(TS, "scale(k: number): this {")).multiline
    assert trigger_at(doc, at(TS, "// gr")).reason == "inside a comment"
    assert trigger_at(doc, at(TS, "`x")).reason == "inside a string"
    end_of_statement = trigger_at(doc, at(TS, "let total: number = n + b"))
    assert end_of_statement.call and not end_of_statement.multiline
    # A type annotation's ":" does not open a block, as Python's would.
    typed = "let count:"
    doc = DocumentStore().open("file:///x/b.ts", typed, "typescript")
    got = trigger_at(doc, len(typed))
    assert got.call and not got.multiline


def test_tsx_triggers_see_jsx():
    doc = DocumentStore().open("file:///x/a.tsx", TSX, "typescriptreact")
    assert trigger_at(doc, at(TSX, "JSX.Element {")).multiline
    assert trigger_at(doc, at(TSX, 'from "re')).reason == "inside a string"


def test_snapshot_keeps_the_grammar():
    doc = DocumentStore().open("file:///x/a.tsx", TSX, "typescriptreact")
    doc.replace(len(TSX), len(TSX), "const el = <span />;\n")
    copy = doc.snapshot()
    assert copy.syntax == "tsx" and not copy.tree.root_node.has_error
