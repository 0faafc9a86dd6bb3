"""The edit history the next-edit specialist reads: keystrokes coalesced into whole-line
edits, a change elsewhere starting the next one, bounds, and what counts as plain typing."""

from covey_specialists.edit_history import (
    MAX_EDIT_CHARS,
    EditHistory,
    RecentEdit,
    implies_more,
)

TEXT = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\n"


def typed(history: EditHistory, uri: str, text: str, at: int, new: str, drop: int = 0) -> str:
    history.changed(uri, (at, at + drop), new)
    return text[:at] + new + text[at + drop:]


def test_keystrokes_on_one_line_are_one_edit_and_a_change_elsewhere_starts_the_next():
    history, uri = EditHistory(), "file:///a.py"
    history.opened(uri, "a.py", TEXT)
    text = TEXT
    at = text.index("w,")
    text = typed(history, uri, text, at, "", drop=1)  # delete "w"
    for i, ch in enumerate("width"):
        text = typed(history, uri, text, at + i, ch)
    (edit,) = history.recent()
    assert (edit.path, edit.line) == ("a.py", 0)
    assert (edit.before, edit.after) == ("def area(w, h):\n", "def area(width, h):\n")
    at = text.index("w *")
    text = typed(history, uri, text, at, "width", drop=1)
    first, second = history.recent()
    assert first.after == "def area(width, h):\n"
    assert (second.line, second.before, second.after) == (
        1, "    return w * h\n", "    return width * h\n")
    assert history.last(uri) == second


def test_a_new_line_typed_below_the_edit_joins_it():
    history, uri = EditHistory(), "file:///a.py"
    history.opened(uri, "a.py", TEXT)
    end = TEXT.index("\n") + 1 + len("    return w * h")
    text = typed(history, uri, TEXT, end, "  # area")
    typed(history, uri, text, end + len("  # area"), "\n    pass")
    (edit,) = history.recent()
    assert edit.before == "    return w * h\n"
    assert edit.after == "    return w * h  # area\n    pass\n"
    assert not implies_more(edit)  # typing at the end of a line implies nothing


def test_edits_of_other_documents_come_in_order_and_an_undone_edit_is_dropped():
    history = EditHistory()
    history.opened("file:///a.py", "a.py", TEXT)
    history.opened("file:///b.py", "b.py", "x = 1\n")
    history.changed("file:///a.py", (4, 8), "size")
    history.changed("file:///b.py", (4, 5), "2")
    history.changed("file:///b.py", (4, 5), "1")  # undone
    assert [e.path for e in history.recent()] == ["a.py"]
    history.changed("file:///b.py", (0, 1), "y")
    assert [e.path for e in history.recent()] == ["a.py", "b.py"]
    history.closed("file:///a.py")  # its edits outlive it
    assert [e.path for e in history.recent()] == ["a.py", "b.py"]
    assert [e.path for e in history.recent("file:///b.py")] == ["b.py"]  # what is sent


def test_a_paste_over_the_limit_is_not_kept_and_the_whole_text_replaced_closes_the_edit():
    history, uri = EditHistory(), "file:///a.py"
    history.opened(uri, "a.py", TEXT)
    history.changed(uri, (0, 0), "x" * (MAX_EDIT_CHARS + 1) + "\n")
    history.changed(uri, (0, 0), "")  # touches the paste's lines
    assert history.recent() == ()
    history.changed(uri, None, "y = 2\n")
    history.changed(uri, (0, 1), "z")
    (edit,) = history.recent()
    assert (edit.before, edit.after) == ("y = 2\n", "z = 2\n")


def test_documents_beyond_the_bound_are_forgotten_oldest_first():
    history = EditHistory(max_documents=2)
    for name in "abc":
        history.opened(f"file:///{name}.py", f"{name}.py", "v = 1\n")
        history.changed(f"file:///{name}.py", (0, 1), "w")
    assert [e.path for e in history.recent()] == ["b.py", "c.py"]


def test_what_implies_more():
    def edit(before, after):
        return RecentEdit("a.py", 0, before, after)

    assert implies_more(edit("def f(a):\n", "def f(size):\n"))
    assert implies_more(edit("g(x)\n", "g(x, strict=True)\n"))
    assert not implies_more(edit("g(x)\n", "g(x)  # ok\n"))  # typed at the end
    assert not implies_more(edit("", "new_line()\n"))  # a line added
    assert not implies_more(edit("old()\n", ""))  # a line deleted
