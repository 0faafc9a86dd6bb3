"""The next-edit task: the window, the prompt, reading answers (changed lines, a whole
rewritten window, no change, nonsense), the edit the editor marks, and the eval's scores."""

import pytest

from covey_specialists.document import Document
from covey_specialists.edit_history import RecentEdit
from covey_specialists.repo_context import Workspace
from covey_specialists.table import load_table
from covey_specialists.tasks import next_edit as ne
from covey_specialists.tasks.common import EditError
from covey_specialists.tasks.protocol import Where

SOURCE = "".join(f"line_{i} = {i}\n" for i in range(40))
RENAME = RecentEdit("m.py", 10, "line_10 = 10\n", "size = 10\n")


def spec():
    return load_table().for_task("next-edit")


def test_the_window_is_two_lines_above_and_eighteen_below_the_last_edit():
    assert ne.window_span(SOURCE, 10) == (8, 29)
    assert ne.window_span(SOURCE, 1) == (0, 20)
    assert ne.window_span(SOURCE, 39) == (37, 40)
    first, window = ne.window_of(SOURCE, 10)
    assert first == 8 and window.startswith("line_8 = 8\n") and window.count("\n") == 21


def test_the_prompt_holds_the_edit_and_the_numbered_window():
    doc = Document("file:///m.py", SOURCE, "python")
    plan = ne.plan(doc, Where(offset=doc.offset_at(10, 0), edits=(RENAME,)), spec())
    text = plan.prompt.text
    assert "m.py:11\n<<<<<<< original\nline_10 = 10\n=======\nsize = 10\n>>>>>>> updated" in text
    assert "lines 9-29 (cursor on line 3)" in text
    assert "1|line_8 = 8\n" in text and "21|line_28 = 28\n" in text
    assert plan.window == doc.text[plan.start:plan.end]
    with pytest.raises(EditError, match="no recent edit"):
        ne.plan(doc, Where(offset=0), spec())
    outside = ne.plan(doc, Where(offset=0, edits=(RENAME,)), spec(), workspace=Workspace())
    assert "File m.py, lines 1-" in outside.prompt.text  # a file in no workspace root


def test_history_keeps_the_latest_edits_within_its_budget():
    edits = tuple(RecentEdit("m.py", i, f"a{i}\n", f"b{i}\n", i) for i in range(100))
    shown = ne.render_edits(edits, budget=200)
    assert "b99" in shown and "b0\n" not in shown and len(shown) <= 200
    assert shown.index("b98") < shown.index("b99")  # most recent last


WINDOW = "def f(a):\n    x = a + 1\n    return a * x\n"


@pytest.mark.parametrize("new", [
    "def f(size):\n    x = size + 1\n    return size * x\n",  # replaced lines
    "def f(a):\n    return a * (a + 1)\n",  # fewer lines
    "def f(a):\n    x = a + 1\n    y = x\n    return a * y\n",  # more lines
    "    '''first'''\ndef f(a):\n    x = a + 1\n    return a * x\n",  # before line 1
    WINDOW,
])
def test_changed_lines_answer_rebuilds_the_window(new):
    answer = ne.hunks(WINDOW, new)
    assert (answer == ne.NO_CHANGE) == (new == WINDOW)
    assert ne.rewrite(WINDOW, answer) == new


def test_answers_read_as_lines_a_whole_window_or_no_change():
    assert ne.rewrite(WINDOW, "2|    x = a + 2\n") == WINDOW.replace("a + 1", "a + 2")
    assert ne.rewrite(WINDOW, "3-|") == "def f(a):\n    x = a + 1\n"
    whole = "```python\ndef f(b):\n    x = b + 1\n    return b * x\n```"
    assert ne.rewrite(WINDOW, whole) == WINDOW.replace("a", "b")
    copied = "1|def f(b):\n2|    x = b + 1\n3|    return b * x"  # the numbers copied back
    assert ne.rewrite(WINDOW, copied) == WINDOW.replace("a", "b")
    assert ne.rewrite(WINDOW, "<NO_CHANGE><|im_end|>") == WINDOW
    with pytest.raises(EditError, match="line 9"):
        ne.rewrite(WINDOW, "9|x")
    with pytest.raises(EditError, match="twice"):
        ne.rewrite(WINDOW, "2|x\n2|y")


def test_finish_gives_the_window_and_the_editor_marks_only_the_changed_lines():
    doc = Document("file:///m.py", SOURCE, "python")
    plan = ne.plan(doc, Where(offset=doc.offset_at(10, 0), edits=(RENAME,)), spec())
    edit = ne.finish(plan, "4|size = 11\n")  # window line 4 is file line 12 (line_11)
    assert (edit.start, edit.end) == (plan.start, plan.end)
    marked = ne.changed_lines(doc, edit)
    assert doc.text[marked.start:marked.end] == "line_11 = 11\n"
    assert marked.new_text == "size = 11\n"
    with pytest.raises(EditError, match="no next edit"):
        ne.finish(plan, ne.NO_CHANGE)
    assert ne.problem(plan, ne.NO_CHANGE) is None  # no change is an answer
    assert ne.problem(plan, "4|size = (\n") is not None  # breaks the parse
    assert ne.problem(plan, "99|x") is not None


def test_scores_exact_match_delta_chrf_and_no_change():
    class Task:
        meta = {"window": WINDOW}
        reference = WINDOW.replace("a", "size")

    right, wrong = ne.scores(Task, Task.reference), ne.scores(Task, WINDOW.replace("a", "sz"))
    assert right["exact_match"] == 1.0 and right["delta_chrf"] == 1.0
    assert wrong["exact_match"] == 0.0 and 0.0 < wrong["delta_chrf"] < 1.0
    silent = ne.scores(Task, "")  # said nothing where a change was due
    assert (silent["no_change_precision"], silent["no_change_recall"]) == (0.0, None)
    Task.reference = WINDOW
    assert ne.scores(Task, "")["no_change_precision"] == 1.0
    assert ne.scores(Task, "") ["delta_chrf"] == 1.0
    assert ne.scores(Task, WINDOW.replace("a", "b"))["no_change_recall"] == 0.0


def test_a_streamed_no_change_ends_the_stream_and_a_cut_line_is_not_kept():
    prompt = ne.next_edit_prompt((RENAME,), "m.py", WINDOW, 0, 0)
    assert ne.stream_done(prompt, "<NO_CHANGE>")
    assert not ne.stream_done(prompt, "2|    x")
    assert ne.finished_part(prompt, "2|    x = size + 1\n3|    ret") == "2|    x = size + 1\n"
