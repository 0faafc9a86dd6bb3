"""Prompt formats and post-processing (pure)."""

from __future__ import annotations

import pytest

from covey_specialists.tasks.common import SMOL_FIM
from covey_specialists.tasks.completion import (
    CompletionContext,
    completion_prompt,
    postprocess_completion,
    stream_done,
)
from covey_specialists.tasks.doc import doc_prompt, postprocess_docstring
from covey_specialists.tasks.refactor import postprocess_refactor


def _prompt(prefix, suffix="", multiline=False, fmt="fim-smol"):
    return completion_prompt(CompletionContext(prefix, suffix, multiline=multiline), fmt, 3000)


def test_fim_smol_puts_the_suffix_first():
    pre, suf, mid = SMOL_FIM
    assert _prompt("a = ", "\nb = 2").text == f"{suf}\nb = 2{pre}a = {mid}"


def test_budget_keeps_whole_lines_and_mostly_prefix():
    prompt = completion_prompt(CompletionContext("x = 1\n" * 500, "y = 2\n" * 500), "prefix", 400)
    assert len(prompt.text) <= 400 and prompt.text.startswith("x = 1")


@pytest.mark.parametrize("prefix, text, done", [
    ("x = ", "1", False),
    ("x = ", "1\n", True),
    ("def f():\n    ", "return 1\nmore", True),
    ("def f():\n", "\n", False),          # blank current line: the answer is the next line
    ("def f():\n", "\n    return 1\n", True),
])
def test_stream_done(prefix, text, done):
    assert stream_done(_prompt(prefix), text) is done


def test_a_block_is_done_at_the_first_line_that_dedents():
    block = _prompt("def f(n):\n    ", multiline=True)
    assert not stream_done(block, "x = n\n    return x\n")
    assert not stream_done(block, "x = n\n")  # the next line's indent is not known yet
    assert stream_done(block, "x = n\n    return x\n#")


def test_other_tasks_read_to_the_end():
    assert not stream_done(doc_prompt("def f(): pass", "python", 100), "a\nb\n")


def test_postprocess_completion_trims_markers_and_repeated_suffix():
    prompt = _prompt("total = sum(", ")\nprint(total)")
    assert postprocess_completion("values)<|endoftext|>", prompt) == "values"
    block = _prompt("def f(x):\n    ", "\nprint(f(1))", multiline=True)
    assert postprocess_completion("y = x + 1\n    return y\nprint(f(1))", block) \
        == "y = x + 1\n    return y"


def test_postprocess_docstring_quotes_and_indents():
    assert postprocess_docstring('"""Add two numbers."""', "    ") == '    """Add two numbers."""\n'
    block = postprocess_docstring("Add a and b.\n\nArgs:\n    a: first", "    ")
    assert block.startswith('    """Add a and b.\n') and block.endswith('    """\n')


def test_postprocess_refactor_takes_the_fenced_code_and_reindents():
    raw = "Here:\n```python\nreturn [x for x in xs]\n```"
    assert postprocess_refactor(raw, "    out = []\n") == "    return [x for x in xs]\n"


@pytest.mark.parametrize("prefix, lead", [
    ("def f(n):\n    ns = []\n", "    "),           # the block goes on
    ("def f(n):\n    if n:\n", "        "),         # a line that opens a block
    ("def f(n):\n\tif n:\n", "\t\t"),               # tabs stay tabs
    ("x = 1\n\n", ""),                               # top level
    ("def f(n):\n    return n", ""),                 # mid-line: nothing to type
])
def test_the_fair_base_prompt_ends_where_an_editor_puts_the_cursor(prefix, lead):
    prompt = completion_prompt(CompletionContext(prefix, "\n"), "prefix", 2000)
    assert prompt.text == prefix + lead


def test_the_fair_base_answer_keeps_the_indent_its_prompt_ended_with():
    prompt = completion_prompt(CompletionContext("def f(n):\n    ns = []\n", "\n"), "prefix",
                               2000)
    assert postprocess_completion("for i in range(n):\n        ns.append(i)\n",
                                  prompt) == "    for i in range(n):"
    assert stream_done(prompt, "return ns") is False
    assert stream_done(prompt, "return ns\n") is True
    fim = completion_prompt(CompletionContext("def f(n):\n    ns = []\n", "\n"), "fim-smol",
                            2000)
    assert postprocess_completion("    return ns\n", fim) == "    return ns"  # no lead


def test_the_gate_gives_the_fair_base_its_indent_back_and_the_specialist_none():
    from covey_specialists.tasks.completion import (
        gate_base_prompt,
        gate_postprocess,
        training_example,
    )

    ex = training_example("def f(n):\n    ns = []\n", "    return ns", "\n", False, "m.py", 2000)
    base = gate_base_prompt(ex.prompt, ex.meta)
    assert base.endswith("ns = []\n    ")
    assert gate_postprocess(base, ex.meta, "return ns\n") == "    return ns"
    assert gate_postprocess(ex.prompt, ex.meta, "    return ns<|endoftext|>") == "    return ns"
