"""Whether a completion request should reach the model at all, and for how much text.

The model is only worth calling where it can help: not in the middle of a word, not inside
a comment or a string, not in an empty document, not before code on the same line. Where it
is called, a cursor that opens a block (after ``def f():`` or ``{``) gets a block;
everywhere else one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from covey_specialists.document import Document

# TypeScript opens blocks as JavaScript does; a ":" there starts a type, not a block.
BLOCK_OPENERS = {"python": (":",), "javascript": ("{", "=>"), "typescript": ("{", "=>")}
COMMENT_TYPES = {"comment", "line_comment", "block_comment"}
STRING_TYPES = {"string", "template_string", "string_fragment", "regex"}
CODE_IN_STRING = {"interpolation", "template_substitution"}
# Characters that may follow the cursor on its line without making it "mid-line" code.
CLOSERS = set(")]}'\";:,` \t\r")


@dataclass(frozen=True)
class Trigger:
    call: bool
    multiline: bool = False
    reason: str = ""


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def trigger_at(doc: Document, offset: int) -> Trigger:
    """Decide for a cursor at string index ``offset`` of ``doc``."""
    text = doc.text
    if doc.is_binary:
        return Trigger(False, reason="binary content")
    before, after = text[:offset], text[offset:]
    if not before.strip():
        return Trigger(False, reason="nothing before the cursor")
    where = _syntax_region(doc, offset)
    if where:
        return Trigger(False, reason=f"inside a {where}")
    if after[:1] and _is_word(after[0]):
        return Trigger(False, reason="mid-word")
    line_before = before.rsplit("\n", 1)[-1]
    rest_of_line = after.split("\n", 1)[0]
    if any(ch not in CLOSERS for ch in rest_of_line):
        return Trigger(False, reason="code after the cursor on this line")
    return Trigger(True, multiline=_opens_block(doc.language or "", line_before, before),
                   reason="ok")


def _opens_block(language: str, line_before: str, before: str) -> bool:
    openers = BLOCK_OPENERS.get(language, (":", "{"))
    if line_before.strip():
        return line_before.rstrip().endswith(openers)
    # blank line: a block if the last non-blank line opened one
    previous = next((ln for ln in reversed(before.split("\n")[:-1]) if ln.strip()), "")
    return previous.rstrip().endswith(openers)


def _syntax_region(doc: Document, offset: int) -> str:
    """``comment`` or ``string`` when the cursor is inside one, else ``""``."""
    if doc.tree is None:
        return ""
    b = doc.byte_at(offset)
    # The node just before the cursor decides (a cursor right after a comment is in it).
    node = doc.tree.root_node.descendant_for_byte_range(max(b - 1, 0), b)
    while node is not None:
        if node.type in CODE_IN_STRING:
            return ""
        if node.type in COMMENT_TYPES and node.start_byte < b <= node.end_byte:
            return "comment"
        if node.type in STRING_TYPES and node.start_byte < b < node.end_byte:
            return "string"
        if node.type == "ERROR" and _unclosed_quote(doc, offset):
            return "string"
        node = node.parent
    return ""


def _unclosed_quote(doc: Document, offset: int) -> bool:
    """A quote opened on the cursor's line and not closed (the parser may not see a string)."""
    line = doc.text[:offset].rsplit("\n", 1)[-1]
    for quote in ("'", '"', "`"):
        if line.count(quote) % 2 == 1:
            return True
    return False
