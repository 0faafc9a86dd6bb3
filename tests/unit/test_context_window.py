"""Prompts cut to the engine's context window, counted with the real model's tokenizer."""

from __future__ import annotations

import pytest

from covey_specialists.context_window import ContextWindow, PromptTooLong
from covey_specialists.tasks import CONTINUATION
from covey_specialists.tasks.common import Prompt
from covey_specialists.tasks.completion import CompletionContext, completion_prompt
from covey_specialists.tasks.doc import doc_prompt
from covey_specialists.tasks.refactor import refactor_prompt

DIGITS = "".join(f"    0x{i:04x}: {i * 7919 % 100003},\n" for i in range(400))
"""A table of numbers: about one token a character, where code has three or four."""
CHINESE = "# 计算两个数的和并返回结果\n" * 200


@pytest.fixture(scope="module")
def window(prepared_model) -> ContextWindow:
    cards = [{"id": "base", "root": str(prepared_model), "max_model_len": 512},
             {"id": "completion", "root": "/adapters/completion", "parent": "base"}]
    found = ContextWindow.from_models(cards)
    assert found is not None
    return found


def test_a_window_needs_a_length_and_a_local_tokenizer(prepared_model, tmp_path):
    assert ContextWindow.from_models([{"id": "base", "root": str(prepared_model)}]) is None
    assert ContextWindow.from_models(
        [{"id": "base", "root": str(tmp_path), "max_model_len": 2048}]) is None
    found = ContextWindow.from_models(
        [{"id": "base", "root": str(prepared_model), "max_model_len": 2048}])
    assert found.max_model_len == 2048


def test_a_prompt_that_fits_goes_out_as_built(window):
    ctx = CompletionContext("def add(a, b):\n    return ", "\n", multiline=False)
    prompt = completion_prompt(ctx, "fim-smol", 3000)
    assert window.fit(prompt, 40) is prompt


@pytest.mark.parametrize("text", [DIGITS, CHINESE], ids=["digits", "chinese"])
@pytest.mark.parametrize("fmt", ["fim-smol", "prefix"])
def test_a_dense_completion_prompt_is_cut_to_leave_room_for_the_answer(window, text, fmt):
    prefix = text + "def total(xs):\n    return "
    suffix = "\n\n" + text
    prompt = completion_prompt(CompletionContext(prefix, suffix), fmt, 3000)
    assert window.count(prompt.text) + 64 > window.max_model_len  # the case under test

    fitted = window.fit(prompt, 64)

    assert window.count(fitted.text) + 64 <= window.max_model_len
    assert fitted.meta["prefix"].endswith("def total(xs):\n    return ")  # the cursor's line
    assert prefix.endswith(fitted.meta["prefix"]) and suffix.startswith(fitted.meta["suffix"])
    assert window.count(fitted.text) > window.max_model_len * 0.6  # cut, not emptied
    assert fitted.format == fmt and fitted.meta["multiline"] is False


def test_a_dense_function_keeps_its_signature_in_the_doc_prompt(window):
    code = "def lookup(code, table):\n    TABLE = {\n" + DIGITS + "    }\n"
    prompt = doc_prompt(code, "python", 4000)

    fitted = window.fit(prompt, 128)

    assert window.count(fitted.text) + 128 <= window.max_model_len
    assert fitted.meta["code"].startswith("def lookup(code, table):")
    assert len(fitted.meta["code"]) < len(prompt.meta["code"])


def test_a_refactor_selection_is_never_cut(window):
    prompt = refactor_prompt(DIGITS[:3000], "Use a dict.", "python", 4000)
    with pytest.raises(PromptTooLong, match=r"does not fit the model's 512-token context"):
        window.fit(prompt, 128)


def test_a_follow_up_keeps_the_answer_so_far_when_its_prompt_is_cut(window):
    code = "def lookup(code, table):\n    TABLE = {\n" + DIGITS + "    }\n"
    first = window.fit(doc_prompt(code, "python", 4000), 128)
    added = ('"""Look a code up in a table of hexadecimal codes and their values, the\n'
             'way the standard library\'s tables are read.\n\nArgs:\n'
             '    code: the code to look up, an integer between 0 and 0xffff.\n    table:')
    assert window.count(first.text + added) + 128 > window.max_model_len
    ask = Prompt(first.task, first.format, first.text + added,
                 {**first.meta, CONTINUATION: added})

    fitted = window.fit(ask, 128)

    assert window.count(fitted.text) + 128 <= window.max_model_len
    assert fitted.text.endswith(added) and fitted.meta[CONTINUATION] == added
    assert fitted.meta["code"].startswith("def lookup(code, table):")
    assert len(fitted.meta["code"]) < len(first.meta["code"])
