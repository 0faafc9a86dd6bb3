"""The eval scores what the editor would show: its completion path is the server's."""

from __future__ import annotations

import asyncio

import pytest

from covey_eval.systems import EngineSystem
from covey_eval.tasks import Task
from covey_server.triggers import decide
from covey_specialists.client import Completion
from covey_specialists.document import Document
from covey_specialists.table import load_table
from covey_specialists.tasks.completion import finish_completion, plan_completion
from covey_usage.calls import ModelCall, new_call_id

PREFIX = "import math\n\n\ndef area(r):\n    return "
SUFFIX = "\n\n\ndef main():\n    print(area(2))\n"
RAW = " math.pi * r * r\n    print('and then some')\n<|endoftext|>"
"""Raw model text: the space the server held back, the answer, then text it must cut."""


class ScriptedEngine:
    """Answers every prompt with ``RAW`` and remembers the prompts it was sent."""

    def __init__(self):
        self.prompts = []

    async def complete(self, spec, prompt, **kwargs) -> Completion:
        self.prompts.append(prompt)
        call = ModelCall(id=new_call_id(), task=spec.task, specialist=spec.key, model="m",
                         adapter="", base_model="b", engine_url="http://fake")
        return Completion(text=RAW, call=call)


def _server(spec, fmt=None):
    """The language server's path for the same document, cursor and model text."""
    doc = Document("file:///area.py", PREFIX + SUFFIX, "python")
    offset = len(PREFIX)
    trigger = decide(doc, offset)
    assert trigger.call and not trigger.multiline
    plan = plan_completion(doc, offset, trigger.multiline, spec, "file:///area.py", fmt=fmt)
    return plan, finish_completion(plan, RAW)


@pytest.mark.parametrize("name, untuned, fair, fmt", [
    ("specialist", False, False, None),
    ("base", True, True, "prefix"),
])
def test_eval_answer_is_the_servers_completion(covey_home, name, untuned, fair, fmt):
    table = load_table()
    spec = table.for_task("completion")
    engine = ScriptedEngine()
    system = EngineSystem(name, engine, table, None, untuned=untuned, fair_base=fair)
    task = Task(id="t", suite="s", kind="completion", stratum="x", prefix=PREFIX,
                suffix=SUFFIX, reference="math.pi * r * r")
    answer = asyncio.run(system.answer(task))

    plan, shown = _server(spec, fmt)
    assert plan.held_back == " "  # the trailing space is held back from the prompt
    assert engine.prompts[0].text == plan.prompt.text
    assert answer.text == shown == "math.pi * r * r"


def test_fair_base_prompt_is_a_plain_continuation(covey_home):
    table = load_table()
    engine = ScriptedEngine()
    system = EngineSystem("base", engine, table, None, untuned=True, fair_base=True)
    task = Task(id="t", suite="s", kind="completion", stratum="x", prefix=PREFIX,
                suffix=SUFFIX)
    asyncio.run(system.answer(task))
    assert engine.prompts[0].format == "prefix"
    assert engine.prompts[0].text == PREFIX.rstrip(" ")  # no markers, no suffix
