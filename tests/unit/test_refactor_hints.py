"""A type-hints refactor that leaves parameters or returns bare is finished one spot at a
time; every type is the model's (a scripted fake engine here, since no real model can be
made to leave a given spot bare)."""

from __future__ import annotations

import dataclasses

from helpers.calls import Collect
from helpers.fake_openai import FakeOpenAI

from covey_specialists import routing
from covey_specialists.client import EngineClient
from covey_specialists.table import load_table
from covey_specialists.tasks.refactor import (
    READY_INSTRUCTIONS,
    follow_up,
    postprocess_refactor,
    refactor_prompt,
)
from covey_specialists.tasks.refactor_hints import HintFiller, bare_spots, first_type

HINTS = READY_INSTRUCTIONS["type-hints"]


def _fill(code: str, replies: list[str]) -> tuple[HintFiller, list[str]]:
    filler, asked, replies = HintFiller(code), [], iter(replies)
    while (spot := filler.pending()) is not None:
        asked.append(filler.continuation(spot))
        filler.add(spot, next(replies))
    return filler, asked


def test_spots_are_every_bare_parameter_then_the_return_in_source_order():
    code = ("class A:\n    @staticmethod\n    async def f(self, a: int, /, b=1, *c,\n"
            "                d, **e) -> None:\n        pass\n\n    def g(cls, x):\n"
            "        return x\n")
    spots = bare_spots(code)
    assert [key[1:] for key, _ in spots] == [("f", "b"), ("f", "c"), ("f", "d"), ("f", "e"),
                                             ("g", "x"), ("g", "return")]
    assert [code[at - 1] for _, at in spots] == ["b", "c", "d", "e", "x", ")"]


def test_each_spot_continues_the_code_so_far_and_takes_the_models_type():
    code = "def scale(values, factor=2, *,\n          clip=None):\n    return values\n"
    filler, asked = _fill(code, ["list[float], factor", "float = 2, *,", "float | None)",
                                 "list[float]:\n    return"])
    assert asked == [
        "def scale(values: ",
        "def scale(values: list[float], factor: ",
        "def scale(values: list[float], factor: float = 2, *,\n          clip: ",
        "def scale(values: list[float], factor: float = 2, *,\n"
        "          clip: float | None = None) -> ",
    ]
    assert filler.text == ("def scale(values: list[float], factor: float = 2, *,\n"
                           "          clip: float | None = None) -> list[float]:\n"
                           "    return values\n")


def test_a_reply_that_is_no_type_leaves_its_spot_bare_and_is_not_asked_again():
    filler, asked = _fill("def f(a, b):\n    return a\n", ["3, b", "open(x))", ""])
    assert len(asked) == 3
    assert filler.text == "def f(a, b):\n    return a\n"
    assert first_type("Callable[[int], str], b", False) == "Callable[[int], str]"
    assert first_type("'Node' | None:", True) == "'Node' | None"
    assert first_type("True", False) is None


def test_only_a_python_type_hints_answer_with_a_bare_spot_gets_a_follow_up():
    code = "def f(a, b=1):\n    return a\n"
    python = refactor_prompt(code, HINTS, "python", 4000)
    bare = "def f(a: int) -> int:\n    return a\n"  # drops b; the repair puts it back bare
    filler = follow_up(python, bare, cut_short=False)
    assert [spot[2] for spot in [filler.pending()]] == ["b"]
    # cut at the token limit in its docstring: the def line still counts, the body is the
    # original's, so the answer is finished all the same
    cut = 'def f(a: int, b=1) -> int:\n    """Return a.\n\n    Return a.\n\n    Return'
    assert follow_up(python, cut, cut_short=True).text == (
        "def f(a: int, b=1) -> int:\n    return a\n")
    assert follow_up(python, "def f(a, b=1:\n", cut_short=True) is None
    assert follow_up(refactor_prompt(code, "Simplify this code.", "python", 4000), bare,
                     False) is None
    assert follow_up(refactor_prompt(code, HINTS, "javascript", 4000), bare, False) is None
    whole = "def f(a: int, b: int = 1) -> int:\n    return a\n"
    assert follow_up(python, whole, cut_short=False) is None


async def test_the_passes_are_logged_calls_and_the_served_code_is_fully_hinted(covey_home):
    code = "    def area(self, width, height):\n        return width * height\n"
    spec = dataclasses.replace(load_table().for_task("refactor"), adapter="", routing="never")
    prompt = refactor_prompt(code, HINTS, "python", 4000)
    answer = "def area(self, width: float, height):\n    return width * height"
    with FakeOpenAI(script=[answer, "float) -> float:", "float:"]) as fake:
        sink = Collect()
        async with EngineClient(fake.url, sink=sink) as client:
            routed = await routing.answer(spec, prompt, engine=client, baseline=None)
        first, *passes = fake.completions()
    assert passes[0].body["prompt"] == prompt.text + "def area(self, width: float, height: "
    assert passes[1].body["prompt"].endswith("width: float, height: float) -> ")
    assert [p.body["stop"] for p in passes] == [["\n", *spec.stop]] * 2
    assert postprocess_refactor(routed.text, code, HINTS) == (
        "    def area(self, width: float, height: float) -> float:\n"
        "        return width * height\n")
    followups = routed.specialist.followups
    assert len(followups) == 2 and all(c in sink.calls for c in followups)
    assert all(c.llm_prompt_tokens == 0 for c in followups)
