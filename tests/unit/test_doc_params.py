"""A docstring that leaves parameters out is finished one parameter at a time, in the
docstring's own convention; the passes are real engine calls (a scripted fake engine here,
since no real model can be made to leave a given parameter out)."""

from __future__ import annotations

import dataclasses

from helpers.calls import Collect
from helpers.fake_openai import FakeOpenAI, Scripted

from covey_specialists import routing
from covey_specialists.client import EngineClient
from covey_specialists.table import load_table
from covey_specialists.tasks.doc import (
    doc_prompt,
    docstring_problem,
    follow_up,
    function_params,
    jsdoc,
)
from covey_specialists.tasks.doc_params import ParamFiller

CODE = "def scale(values, factor, *rest, clip=None, **options):\n    return values\n"


def _fill(text: str, code: str = CODE, replies: dict | None = None, cut_short=False):
    filler = follow_up(doc_prompt(code, "python", 4000), text, cut_short)
    asked = []
    while filler is not None and (name := filler.pending()) is not None:
        asked.append(filler.continuation(name))
        filler.add(name, (replies or {}).get(name, f"The {name.strip('*')}.\nnext line"))
    return filler, asked


def test_signature_names_star_parameters_as_a_docstring_does():
    assert function_params("class A:\n    def f(self, a, /, b, *c, d, **e): pass",
                           starred=True) == \
        ["a", "b", "*c", "d", "**e"]


def test_a_one_line_summary_gets_an_args_section_before_its_returns():
    filler, asked = _fill("Scale them.\n\nReturns:\n    The scaled list.")
    assert asked[0] == "Scale them.\n\nArgs:\n    values: "
    assert asked[1] == "Scale them.\n\nArgs:\n    values: The values.\n    factor: "
    assert filler.text == (
        "Scale them.\n\nArgs:\n    values: The values.\n    factor: The factor.\n"
        "    *rest: The rest.\n    clip: The clip.\n    **options: The options.\n\n"
        "Returns:\n    The scaled list.")
    assert docstring_problem(CODE, filler.text) is None


def test_a_partial_google_section_is_continued_at_its_own_indent():
    text = ("Scale.\n\nArgs:\n    values (`list`):\n        The values.\n"
            "    factor (`float`):\n        How much.\n    rest: More.\n    clip: Cap.\n\n"
            "Returns:\n    list")
    filler, asked = _fill(text)
    assert asked == [text.split("\n\nReturns")[0] + "\n    **options: "]
    assert filler.text.endswith("    clip: Cap.\n    **options: The options.\n\nReturns:\n    list")


def test_entries_whose_description_starts_on_the_next_line_are_followed_in_kind():
    text = "Scale.\n\nArgs:\n    values (`list`):\n        The values.\n"
    filler, asked = _fill(text, "def scale(values, factor):\n    pass\n")
    assert asked == [text + "    factor:\n        "]
    assert filler.text == text + "    factor:\n        The factor."


def test_rest_fields_get_another_param_field():
    text = "Scale.\n\n:param values: The values.\n:param factor: How much.\n:returns: list"
    filler, asked = _fill(text, "def scale(values, factor, clip):\n    pass\n")
    assert asked == ["Scale.\n\n:param values: The values.\n:param factor: How much.\n"
                     ":param clip: "]
    assert filler.text == ("Scale.\n\n:param values: The values.\n:param factor: How much.\n"
                           ":param clip: The clip.\n:returns: list")


def test_a_numpy_section_gets_a_numpy_entry():
    text = ("Scale.\n\nParameters\n----------\nvalues : list\n    The values.\n\n"
            "Returns\n-------\nlist")
    filler, asked = _fill(text, "def scale(values, factor):\n    pass\n")
    assert asked == ["Scale.\n\nParameters\n----------\nvalues : list\n    The values.\n"
                     "factor : "]
    assert "    The values.\nfactor : The factor.\n\nReturns\n-------" in filler.text


def test_an_answer_cut_by_the_token_limit_loses_its_unfinished_line():
    filler, asked = _fill("Scale.\n\nArgs:\n    values: The values.\n    factor: How mu",
                          "def scale(values, factor):\n    pass\n", cut_short=True)
    assert asked == ["Scale.\n\nArgs:\n    values: The values.\n    factor: "]
    assert filler.text == "Scale.\n\nArgs:\n    values: The values.\n    factor: The factor."


def test_nothing_is_asked_when_every_parameter_is_named_or_the_model_says_nothing():
    assert follow_up(doc_prompt(CODE, "python", 4000),
                     "Scale values by factor; rest, clip and options go on.", False) is None
    assert follow_up(doc_prompt(JS, "javascript", 4000),
                     "/**\n * Scale.\n * @param values The values.\n * @param factor By.\n */",
                     False) is None
    assert follow_up(doc_prompt(CODE, "python", 4000), "```\n```", False) is None
    filler, _ = _fill("Scale.", "def scale(values):\n    pass\n", replies={"values": "  \n"})
    assert filler.text == "Scale."


JS = "function scale(values, factor = 2, { clip } = {}) {\n  return values;\n}\n"


def _fill_js(raw: str) -> tuple[ParamFiller, list[str]]:
    filler, asked = follow_up(doc_prompt(JS, "javascript", 4000), raw, False), []
    while (name := filler.pending()) is not None:
        asked.append(filler.continuation(name))
        filler.add(name, f"The {name}.\nnext line")
    return filler, asked


def test_a_jsdoc_block_gets_param_tags_after_its_last_one():
    filler, asked = _fill_js("/**\n * Scale them.\n * @param {number[]} values - The values."
                             "\n *   All of them.\n * @returns {number[]} Scaled.\n */")
    assert asked == ["Scale them.\n@param {number[]} values - The values.\n  All of them.\n"
                     "@param factor "]
    assert jsdoc(filler.text, "  ") == (
        "  /**\n   * Scale them.\n   * @param {number[]} values - The values.\n"
        "   *   All of them.\n   * @param factor The factor.\n"
        "   * @returns {number[]} Scaled.\n   */\n")


def test_a_jsdoc_block_without_param_tags_gets_them_before_its_other_tags():
    filler, asked = _fill_js("Scale the list.\n@returns {number[]} Scaled.")
    assert asked[0] == "Scale the list.\n\n@param values "
    assert filler.text == ("Scale the list.\n\n@param values The values.\n"
                           "@param factor The factor.\n@returns {number[]} Scaled.")


def test_at_most_eight_parameters_are_asked_for():
    code = "def f(" + ", ".join(f"p{i}" for i in range(12)) + "):\n    pass\n"
    _, asked = _fill("Do it.", code)
    assert len(asked) == 8 and ParamFiller("x", ["a"]).tokens_per_entry > 0


async def test_the_passes_are_logged_calls_and_the_served_docstring_names_every_parameter(
        covey_home):
    code = "def add(a, b):\n    return a + b\n"
    spec = dataclasses.replace(load_table().for_task("doc"), adapter="", routing="on-failure")
    prompt = doc_prompt(code, "python", 4000)
    # the engine streams its end of turn as text; the client cuts it
    with FakeOpenAI(script=["Add two numbers.", " The first number.\n",
                            " The second.<|im_end|>"]) as fake:
        sink = Collect()
        async with EngineClient(fake.url, sink=sink) as client:
            routed = await routing.answer(
                spec, prompt, engine=client, baseline=None,
                validate=lambda text: docstring_problem(code, text))
        first, *passes = fake.completions()
    assert routed.source == "specialist" and routed.invalid_reason is None
    assert routed.text == "Add two numbers.\n\nArgs:\n    a: The first number.\n" \
                          "    b: The second."
    assert passes[0].body["prompt"] == prompt.text + "Add two numbers.\n\nArgs:\n    a: "
    assert passes[1].body["prompt"].endswith("    a: The first number.\n    b: ")
    assert [p.body["stop"] for p in passes] == [["\n", *spec.stop]] * 2
    assert "\n" not in first.body["stop"]
    assert [c.id for c in routed.calls] == [c.id for c in sorted(sink.calls,
                                                                 key=lambda c: c.started_at)]
    followups = routed.specialist.followups
    assert len(followups) == 2 and all(c.llm_prompt_tokens == 0 for c in followups)
    assert routed.call.llm_prompt_tokens > 0


async def test_a_pass_that_times_out_ends_the_passes_and_keeps_the_answer(covey_home):
    code = "def add(a, b):\n    return a + b\n"
    spec = dataclasses.replace(load_table().for_task("doc"), adapter="", routing="never",
                               timeout_s=0.5)
    slow = Scripted(tokens=[" The first."], pause_s=2.0)
    with FakeOpenAI(script=["Add two numbers.", slow, " The second."]) as fake:
        sink = Collect()
        async with EngineClient(fake.url, sink=sink) as client:
            routed = await routing.answer(spec, doc_prompt(code, "python", 4000), engine=client,
                                          baseline=None)
        assert len(fake.completions()) == 2, "no pass after the one that timed out"
    assert routed.source == "specialist" and routed.text == "Add two numbers."
    (failed,) = routed.specialist.followups
    assert failed.status == "timeout" and failed in sink.calls
