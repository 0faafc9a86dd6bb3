"""What became of a suggestion, inferred from the edits that follow it: typed through,
accepted in part or in full, typed over, superseded, rejected; and whether accepted text
is still there at each horizon."""

from __future__ import annotations

import asyncio

import pytest

from covey_server.feedback import Feedback

TEXT = "total = sum(values)\n    return total"
AT = 100  # where the suggestion starts


class Doc:
    """A document the tracker is told about edit by edit, as the server tells it."""

    def __init__(self, feedback: Feedback, text: str):
        self.feedback, self.text = feedback, text

    def edit(self, start: int, end: int, new: str) -> None:
        self.feedback.edited("file:///a.py", start, end, new)
        self.text = self.text[:start] + new + self.text[end:]


def tracker(horizons: dict[str, float] | None = None):
    reports: dict[str, dict] = {}
    now = [0.0]
    docs: dict[str, Doc] = {}

    def report(call_id: str, fields: dict) -> None:
        reports.setdefault(call_id, {}).update(fields)

    feedback = Feedback(report, lambda uri: docs[uri].text if uri in docs else None,
                        horizons or {}, clock=lambda: now[0])
    doc = Doc(feedback, "x" * AT + "\n")
    docs["file:///a.py"] = doc
    return feedback, doc, reports, now


def show(feedback: Feedback, call_id: str = "c1", at: int = AT, text: str = TEXT) -> None:
    feedback.shown("file:///a.py", call_id, at, text)


def test_typing_the_suggestion_through_is_typed_not_accepted():
    feedback, doc, reports, now = tracker()
    show(feedback)
    for i, ch in enumerate("total "):
        doc.edit(AT + i, AT + i, ch)
        show(feedback, at=AT + i + 1, text=TEXT[i + 1:])  # the cache serves the rest
    now[0] = 2.0
    doc.edit(AT + 6, AT + 6, "+")  # then something else
    assert reports["c1"] == {
        "shown_at": reports["c1"]["shown_at"], "outcome": "ignored", "detail": "typed-over",
        "shown_ms": 2000.0, "accepted_chars": 0, "accepted_lines": 0, "typed_chars": 6}


def test_accepting_word_by_word_then_leaving_is_a_partial_accept():
    feedback, doc, reports, _ = tracker()
    show(feedback)
    doc.edit(AT, AT, "total ")    # Accept Next Word
    doc.edit(AT + 6, AT + 6, "= ")
    doc.edit(AT + 8, AT + 8, "x")  # typed over
    assert reports["c1"]["outcome"] == "partial"
    assert (reports["c1"]["accepted_chars"], reports["c1"]["accepted_lines"]) == (8, 1)


def test_dismissing_the_rest_after_a_word_is_accepted_keeps_the_partial_accept():
    feedback, doc, reports, _ = tracker()
    show(feedback)
    doc.edit(AT, AT, "total ")  # Accept Next Word
    feedback.rejected("c1")      # then Escape
    assert (reports["c1"]["outcome"], reports["c1"]["detail"]) == ("partial", "rejected")
    assert reports["c1"]["accepted_chars"] == 6


def test_after_a_word_is_accepted_a_one_character_step_is_accepted_too():
    """VS Code's Accept Next Word inserted "return", then " " on its own."""
    feedback, doc, reports, _ = tracker()
    show(feedback)
    doc.edit(AT, AT, "total")
    doc.edit(AT + 5, AT + 5, " ")
    doc.edit(AT + 6, AT + 6, "x")
    assert (reports["c1"]["accepted_chars"], reports["c1"]["typed_chars"]) == (6, 0)


def test_a_whole_accept_over_two_lines_and_the_command():
    feedback, doc, reports, _ = tracker()
    show(feedback)
    doc.edit(AT, AT, "total = sum(values)\n")  # Accept Next Line
    doc.edit(AT + 20, AT + 20, TEXT[20:])        # Tab: the rest
    feedback.accepted("c1")                      # the item's command, after its text
    assert reports["c1"]["outcome"] == "accepted"
    assert (reports["c1"]["accepted_chars"], reports["c1"]["accepted_lines"]) == (len(TEXT), 2)


def test_enter_and_its_indent_count_as_typing():
    feedback, doc, reports, _ = tracker()
    text = "a = 1\n    b = 2"
    show(feedback, text=text)
    for i, ch in enumerate("a = 1"):
        doc.edit(AT + i, AT + i, ch)
    doc.edit(AT + 5, AT + 5, "\n    ")  # the editor's new line and indent
    doc.edit(AT + 10, AT + 10, "b = 2")  # the rest, accepted
    assert reports["c1"]["outcome"] == "accepted"
    assert (reports["c1"]["typed_chars"], reports["c1"]["accepted_chars"]) == (10, 5)


def test_a_completion_item_replaces_the_word_typed_and_adds_the_rest():
    feedback, doc, reports, _ = tracker()
    doc.edit(AT, AT, "to")
    show(feedback, at=AT + 2, text="tal = 1")
    doc.edit(AT, AT + 2, "total = 1")
    assert reports["c1"]["outcome"] == "accepted"
    assert reports["c1"]["accepted_chars"] == len("tal = 1")


def test_edits_before_the_suggestion_move_it_and_edits_after_the_cursor_do_not_end_it():
    feedback, doc, reports, _ = tracker()
    show(feedback)
    doc.edit(0, 0, "import os\n")            # above: it moves down
    doc.edit(AT + 10 + 5, AT + 10 + 6, "")   # after the cursor: ignored
    doc.edit(AT + 10, AT + 10, TEXT)         # then accepted where it now is
    assert reports["c1"]["outcome"] == "accepted"


@pytest.mark.parametrize("then, outcome, detail", [
    (lambda f, d: show(f, "c2", AT + 3), "ignored", "superseded"),
    (lambda f, d: f.rejected("c1"), "rejected", ""),
    (lambda f, d: f.closed("file:///a.py"), "ignored", "closed"),
    (lambda f, d: d.edit(AT - 1, AT, ""), "ignored", "typed-over"),  # backspace
])
def test_a_suggestion_ends_ignored_or_rejected(then, outcome, detail):
    feedback, doc, reports, _ = tracker()
    show(feedback)
    then(feedback, doc)
    assert (reports["c1"]["outcome"], reports["c1"]["detail"]) == (outcome, detail)


def test_a_suggestion_typed_in_full_by_hand_is_typed():
    feedback, doc, reports, _ = tracker()
    show(feedback, text="ab")
    doc.edit(AT, AT, "a")
    doc.edit(AT + 1, AT + 1, "b")
    assert reports["c1"]["outcome"] == "typed"
    assert reports["c1"]["accepted_chars"] == 0


def test_retention_follows_the_accepted_text_and_sees_it_deleted():
    async def scenario():
        horizons = {"retained_30s": 0.05, "retained_120s": 0.3}
        feedback, doc, reports, _ = tracker(horizons)
        show(feedback)
        doc.edit(AT, AT, TEXT)
        doc.edit(0, 0, "# moved down\n")           # the span follows
        doc.edit(AT + 13 + 8, AT + 13 + 11, "add")  # an edit inside: still mostly there
        await asyncio.sleep(0.15)
        first = dict(reports["c1"])
        doc.edit(AT + 13, AT + 13 + len(TEXT), "")  # deleted
        await asyncio.sleep(0.3)
        return first, reports["c1"]

    first, last = asyncio.run(scenario())
    assert first["retained_30s"] == 1 and "retained_120s" not in first
    assert last["retained_120s"] == 0


def test_retention_of_a_closed_document_is_not_guessed():
    async def scenario():
        feedback, doc, reports, _ = tracker({"retained_30s": 0.05})
        show(feedback)
        doc.edit(AT, AT, TEXT)
        feedback.closed("file:///a.py")
        await asyncio.sleep(0.15)
        return reports["c1"]

    assert "retained_30s" not in asyncio.run(scenario())
