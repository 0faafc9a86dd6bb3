"""When the model is called, and for one line or a block."""

from __future__ import annotations

import pytest

from covey_server.triggers import trigger_at
from covey_specialists.document import Document

PY = '''import os

def area(r):
    # radius in metres
    label = "circle area"
    total = compute(r)
    return total

def empty():
    <CURSOR>
'''.replace("<CURSOR>", "")

JS = '''function add(a, b) {
  // sum
  const s = `total ${a}`;
  return a
}
'''


def at(src: str, needle: str, delta: int = 0) -> int:
    return src.index(needle) + len(needle) + delta


@pytest.mark.parametrize(("needle", "delta", "call", "multiline", "reason"), [
    ("def area(r):", 0, True, True, "ok"),             # after a block opener: a block
    ("    return total", 0, True, False, "ok"),        # end of a statement: one line
    ("    return", 0, False, False, "code after the cursor on this line"),
    ("comp", 0, False, False, "mid-word"),
    ("# radius in", 0, False, False, "inside a comment"),
    ("# radius in metres", 0, False, False, "inside a comment"),
    ('"circle', 0, False, False, "inside a string"),
    ("def empty():\n    ", 0, True, True, "ok"),       # empty body
])
def test_python(needle, delta, call, multiline, reason):
    doc = Document("u", PY, "python")
    got = trigger_at(doc, at(PY, needle, delta))
    assert (got.call, got.multiline, got.reason) == (call, multiline, reason)


def test_nothing_before_the_cursor():
    doc = Document("u", "\n\n   \n", "python")
    assert trigger_at(doc, 3).reason == "nothing before the cursor"


def test_binary_content():
    doc = Document("u", "x = 1\n\x00\x01\x02", "python")
    assert trigger_at(doc, 6).reason == "binary content"


def test_closing_brackets_after_the_cursor_are_fine():
    src = "print(len(items"
    doc = Document("u", src + "))\n", "python")
    assert trigger_at(doc, len(src)).call


def test_javascript():
    doc = Document("u", JS, "javascript")
    assert trigger_at(doc, at(JS, "function add(a, b) {")).multiline
    assert trigger_at(doc, at(JS, "// su")).reason == "inside a comment"
    assert trigger_at(doc, at(JS, "`tot")).reason == "inside a string"
    assert trigger_at(doc, at(JS, "return a")).call


def test_code_inside_an_fstring_interpolation_is_not_a_string():
    src = 'name = "x"\nmsg = f"hello {name.upper()'
    doc = Document("u", src + '}"\n', "python")
    got = trigger_at(doc, len(src))
    assert got.reason != "inside a string"
