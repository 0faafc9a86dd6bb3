"""Documents parsed incrementally with tree-sitter, and the context extracted around a cursor."""

from __future__ import annotations

import random

import pytest
from lsprotocol import types

from covey_specialists.document import (
    Document,
    DocumentStore,
    cursor_context,
    enclosing_scopes,
    imports,
    language_for,
)

SOURCE = '''import os
from pathlib import Path


class Store:
    def load(self, name):
        path = Path(name)
        return path.read_text()


def main():
    pass
'''


def test_random_edits_match_a_fresh_parse():
    """Incremental edits (with multi-byte and astral characters) give the same text, line
    index and tree as parsing the final text from scratch."""
    doc = Document("file:///a.py", SOURCE, "python")
    text = SOURCE
    rnd = random.Random(7)
    pieces = ["x", "\n", "é", "😀", "", "def g():\n    return 1\n", "'", "    ", "(\n"]
    for _ in range(400):
        a = rnd.randint(0, len(text))
        b = min(len(text), a + rnd.randint(0, 6))
        new = rnd.choice(pieces)
        doc.replace(a, b, new)
        text = text[:a] + new + text[b:]
        fresh = Document("file:///a.py", text, "python")
        assert doc.text == text
        assert doc._starts == fresh._starts
        assert str(doc.tree.root_node) == str(fresh.tree.root_node)


def test_lsp_changes_use_utf16_columns():
    store = DocumentStore()
    store.open("file:///e.py", "s = '😀'\nx = 1\n", "python", 1)
    # the emoji is two UTF-16 units: column 7 is just after it
    change = types.TextDocumentContentChangePartial(
        range=types.Range(types.Position(0, 7), types.Position(0, 7)), text="!")
    doc = store.change("file:///e.py", 2, [change])
    assert doc.text == "s = '😀!'\nx = 1\n"
    assert doc.version == 2
    assert doc.position_at(doc.text.index("!")) == (0, 7)
    assert doc.offset_at(1, 5) == len("s = '😀!'\nx = 1")


def test_utf8_and_utf32_position_encodings():
    doc = Document("u", "é😀x\n", "python", encoding="utf-8")
    assert doc.offset_at(0, 6) == 2  # é is 2 bytes, 😀 is 4
    assert doc.position_at(2) == (0, 6)
    doc32 = Document("u", "é😀x\n", "python", encoding="utf-32")
    assert doc32.offset_at(0, 2) == 2


def test_whole_document_change_and_unknown_uri():
    store = DocumentStore()
    store.open("file:///w.py", "a = 1\n", "python")
    doc = store.change("file:///w.py", 3, [types.TextDocumentContentChangeWholeDocument("b = 2\n")])
    assert doc.text == "b = 2\n" and doc.tree.root_node.type == "module"
    assert store.change("file:///nope.py", 1, []) is None


def test_positions_out_of_range():
    doc = Document("u", "a = 1\nb = 2", "python")
    assert doc.offset_at(5, 0, clamp=False) is None
    assert doc.offset_at(0, 99, clamp=False) is None
    assert doc.offset_at(-1, 0, clamp=False) is None
    assert doc.offset_at(5, 0) == len(doc.text)  # clamped for edits


def test_scopes_and_imports():
    doc = Document("u", SOURCE, "python")
    offset = SOURCE.index("return path")
    scopes = enclosing_scopes(doc, offset)
    assert [(s.kind, s.name) for s in scopes] == [("function", "load"), ("class", "Store")]
    assert scopes[0].header == "def load(self, name):"
    assert imports(doc) == ("import os", "from pathlib import Path")


def test_javascript_scopes_and_imports():
    src = "import fs from 'fs';\nclass A {\n  run(x) {\n    return x;\n  }\n}\n"
    doc = Document("u", src, "javascript")
    scopes = enclosing_scopes(doc, src.index("return"))
    assert [(s.kind, s.name) for s in scopes] == [("function", "run"), ("class", "A")]
    assert imports(doc) == ("import fs from 'fs';",)


def test_window_keeps_imports_and_header_within_budget():
    body = "".join(f"    x{i} = {i}\n" for i in range(400))
    src = f"import os\n\ndef big():\n{body}    return "
    doc = Document("u", src, "python")
    ctx = cursor_context(doc, len(src), budget=400)
    assert len(ctx.prefix) + len(ctx.suffix) <= 400
    assert ctx.prefix.startswith("import os\ndef big():\n")
    assert ctx.prefix.endswith("    return ")
    assert ctx.scope.name == "big"


def test_small_document_context_is_the_whole_text():
    doc = Document("u", SOURCE, "python")
    offset = SOURCE.index("pass")
    ctx = cursor_context(doc, offset, budget=3000)
    assert ctx.prefix == SOURCE[:offset] and ctx.suffix == SOURCE[offset:]


def test_large_documents_are_not_parsed_and_unknown_languages_have_no_tree():
    big = "x = 1\n" * 200_000
    doc = Document("u", big, "python", max_parse_bytes=1_000_000)
    assert doc.tree is None and doc.line_count == 200_001
    assert Document("u", "fn main() {}", None).tree is None


@pytest.mark.parametrize(("language_id", "path", "expected"), [
    ("python", "", "python"), ("javascriptreact", "", "javascript"),
    (None, "file:///x/app.mjs", "javascript"), ("plaintext", "file:///x/a.txt", None),
])
def test_language_for(language_id, path, expected):
    assert language_for(language_id, path) == expected


def test_snapshot_is_independent():
    doc = Document("u", SOURCE, "python")
    snap = doc.snapshot()
    doc.replace(0, 0, "# new\n")
    assert snap.text == SOURCE and snap.tree.root_node.start_point == (0, 0)
    assert doc.text.startswith("# new")


def _typed(doc, offset: int, text: str) -> None:
    doc.replace(offset, offset, text)


def test_imports_follow_edits_without_listing_the_file_again():
    from covey_specialists.document import imports

    body = "import os\n\ndef f(a):\n    return a\n\nfrom sys import (\n    argv,\n)\n"
    doc = Document("file:///t.py", body, "python")
    assert imports(doc) == ("import os", "from sys import (\n    argv,\n)")
    _typed(doc, doc.text.index("return a") + len("return a"), " + 1")  # no import touched
    assert doc._imports is not None
    assert imports(doc) == ("import os", "from sys import (\n    argv,\n)")
    _typed(doc, doc.text.index("argv,") + len("argv,"), " path,")  # inside a multi-line one
    assert imports(doc) == ("import os", "from sys import (\n    argv, path,\n)")
    _typed(doc, doc.text.index("def f"), "import re\n")  # a new import line
    assert imports(doc) == ("import os", "import re", "from sys import (\n    argv, path,\n)")
    _typed(doc, len(doc.text), "imp")  # typing towards an import
    _typed(doc, len(doc.text), "ort json\n")
    assert imports(doc)[-1] == "import json"
