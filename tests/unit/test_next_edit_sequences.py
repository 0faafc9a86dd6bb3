"""Synthetic next-edit sequences: each kind's first edit and the edits it implies, and the
negatives (everything done, a literal changed)."""

import ast
import random

from covey_specialists.tasks import next_edit as ne
from covey_specialists.tasks.next_edit_sequences import (
    call_args,
    case,
    cases,
    literals,
    quotes,
    renames,
    type_hints,
)

SOURCE = '''def scale(points, factor):
    out = []
    for p in points:
        out.append(p * factor)
    log('scaled', len(out))
    log('factor', factor)
    return out


def load(path: str, mode: str = 'r'):
    return open(path, mode)


def save(path: str, data):
    return write(path, data, 3)
'''
LINES = SOURCE.splitlines()
TREE = ast.parse(SOURCE)


def by_name(seqs, text):
    return next(s for s in seqs if text in s.steps[0][2])


def test_a_rename_starts_where_the_name_is_defined_and_implies_its_other_uses():
    seq = next(s for s in renames(TREE, LINES, random.Random(1))
               if [line for line, _, _ in s.steps] == [0, 3, 5])
    first_line, before, after = seq.steps[0]
    new = after.split(", ")[1].rstrip("):")
    assert before == "def scale(points, factor):" and new != "factor"
    assert seq.steps[2][2] == f"    log('factor', {new})"  # the string is left alone
    found = case(seq, LINES, "m.py", done=0)
    assert found.edits[0].after == after + "\n"
    assert found.expected.count(new) == 3 and found.window.count(new) == 1
    assert ne.rewrite(found.window, ne.hunks(found.window, found.expected)) == found.expected
    done = case(seq, LINES, "m.py", done=2)  # every use renamed: nothing is due
    assert done.kind == "done" and done.expected == done.window and len(done.edits) == 3


def test_a_keyword_added_to_one_call_implies_the_same_calls():
    seq = next(s for s in call_args(TREE, LINES, random.Random(0)) if "log(" in s.steps[0][1])
    (l1, _, a1), (l2, _, a2) = seq.steps
    kw = a1[a1.rindex(", ") + 2:-1]
    assert (l1, l2) == (4, 5) and "=" in kw and a2 == f"    log('factor', factor, {kw})"


def test_quotes_carry_through_neighbouring_lines():
    (seq, *rest) = quotes(SOURCE, LINES)
    assert [s[0] for s in seq.steps] == [4, 5]
    assert seq.steps[1][2] == '    log("factor", factor)'


def test_a_type_hint_goes_to_the_same_parameter_of_the_other_functions():
    seq = next(s for s in type_hints(TREE, LINES) if "path" in s.steps[0][2])
    assert [(i, old) for i, old, _ in seq.steps] == [
        (9, "def load(path, mode: str = 'r'):"), (13, "def save(path, data):")]


def test_a_changed_literal_implies_nothing():
    (seq,) = literals(TREE, LINES, random.Random(0))
    found = case(seq, LINES, "m.py", done=0)
    assert found.kind == "literal" and found.expected == found.window
    assert "write(path, data, 3)" not in found.text


def test_a_file_gives_per_file_cases_spread_over_the_kinds():
    kinds = set()
    for seed in range(10):
        found = cases(SOURCE, TREE, "m.py", random.Random(seed), per_file=4)
        assert len(found) == 4
        kinds |= {c.kind for c in found}
        for c in found:
            assert c.text.splitlines()[c.cursor_line] + "\n" == c.edits[-1].after
    assert kinds == {"rename", "call-args", "quotes", "type-hint", "literal", "done"}


def test_training_keeps_every_edit_due_and_a_quarter_of_the_set_negative():
    from covey_training.data_next_edit import balance
    from covey_training.examples import Example

    kinds = ["rename"] * 30 + ["done"] * 40 + ["literal"] * 20
    examples = [Example("next-edit", "p", "t", f"s{i}", {"kind": k}) for i, k in enumerate(kinds)]
    kept, mix = balance(examples, random.Random(0))
    assert sum(ex.meta["kind"] == "rename" for ex in kept) == 30
    assert len(kept) == 40  # 10 negatives: a quarter
    assert mix["rename"] == [30, 30] and mix["done"][0] + mix["literal"][0] == 60
