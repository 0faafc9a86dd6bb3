"""The eval scores what the editor shows: the real language server (pytest-lsp) and the
eval's specialist system answer the same holes from the same scripted engine, and agree on
what is shown, hidden as unsure, or refused as invalid.

The engine is scripted, so each answer's text and log-probs are known: one needs
post-processing (it runs on past its line), one is unsure (mean log-prob under the show
threshold), one does not parse (refused under ``on-failure`` routing, with no baseline).
Skipping the show filter, validation or post-processing on either side changes one of the
expected outcomes below.
"""

from __future__ import annotations

import asyncio

import pytest_asyncio
from helpers.fake_openai import FakeOpenAI, Scripted
from helpers.lsp_client import inline_params, open_doc, start_client, stop_client

from covey_eval import runner
from covey_eval.systems import EngineSystem
from covey_eval.tasks import Task
from covey_server.triggers import trigger_at
from covey_specialists.client import EngineClient
from covey_specialists.document import Document
from covey_specialists.table import load_table

THRESHOLD = -1.0
CURSOR = "<CURSOR>"
CASES = {
    # name: (document with the cursor, scripted tokens, log-probs, what the editor shows)
    "runs-on": ("def area(r):\n    return <CURSOR>\n\n\ndef other():\n    pass\n",
                ["3.14", " * r", " * r\n", "    print(r)\n"], [-0.1, -0.1, -0.1, -0.1],
                "3.14 * r * r"),
    "unsure": ("def volume(r):\n    return <CURSOR>\n\n\ndef other():\n    pass\n",
               ["r ", "** 3"], [-2.5, -3.0], None),
    "invalid": ("def half(x):\n    return <CURSOR>\n\n\ndef other():\n    pass\n",
                ["x / ", "(2"], [-0.1, -0.1], None),
}
SETTINGS = {"min_show_logprob": THRESHOLD, "routing": "on-failure"}


def _answer(body: dict) -> Scripted:
    """The scripted answer for the case whose function is at the cursor: the one written
    last in the prompt (the server's context may quote the other open documents first)."""
    prompt = body["prompt"]
    at = {name: prompt.rfind(case[0].split("(", 1)[0]) for name, case in CASES.items()}
    name = max(at, key=at.get)
    assert at[name] >= 0, f"no scripted answer for {prompt!r}"
    _, tokens, logprobs, _ = CASES[name]
    return Scripted(tokens=tokens, logprobs=logprobs)


def _task(name: str) -> Task:
    text = CASES[name][0]
    offset = text.index(CURSOR)
    source = text.replace(CURSOR, "")
    multiline = trigger_at(Document("file:///t.py", source, "python"), offset).multiline
    return Task(id=name, suite="editor", kind="completion", stratum="", prefix=source[:offset],
                suffix=source[offset:], reference=CASES[name][3] or "?", multiline=multiline)


@pytest_asyncio.fixture
async def engine():
    with FakeOpenAI("unused") as fake:
        fake.by_model["completion"] = _answer
        yield fake


async def _editor_shows(fake: FakeOpenAI) -> dict[str, str | None]:
    client = await start_client({"engine": {"url": fake.url}, "debounceMs": 10,
                                 "specialists": {"completion": {
                                     "minShowLogprob": THRESHOLD, "routing": "on-failure"}}})
    shown = {}
    try:
        for name, (text, *_rest) in CASES.items():
            uri = f"file:///tmp/{name}.py"
            source = text.replace(CURSOR, "")
            open_doc(client, uri, source)
            offset = text.index(CURSOR)
            line = source.count("\n", 0, offset)
            char = offset - (source.rfind("\n", 0, offset) + 1)
            result = await client.text_document_inline_completion_async(
                inline_params(uri, line, char))
            shown[name] = result.items[0].insert_text if result.items else None
    finally:
        await stop_client(client)
    return shown


async def _eval_rows(fake: FakeOpenAI) -> dict[str, dict]:
    table = load_table().with_overrides({"completion": SETTINGS})
    tasks = [_task(name) for name in CASES]
    async with EngineClient(fake.url) as client:
        system = EngineSystem("specialist", client, table, None)
        answers, _ = await runner.answer_all(system, tasks, concurrency=1)
    rows = await asyncio.to_thread(runner.score_all, tasks, {"specialist": answers})
    return {row["task"]: row for row in rows}


async def test_the_eval_scores_exactly_what_the_editor_shows(engine):
    editor = await _editor_shows(engine)
    rows = await _eval_rows(engine)
    assert editor == {name: case[3] for name, case in CASES.items()}
    for name, row in rows.items():
        shown_by_eval = row["answer"] if row["shown"] else None
        assert shown_by_eval == editor[name], name
    # every answer is still scored, hidden or not: the model's own, post-processed
    assert rows["unsure"]["answer"] == "r ** 3" and "hidden" in rows["unsure"]
    assert rows["invalid"]["answer"] == "x / (2" and "parse" in rows["invalid"]["hidden"]
    assert rows["runs-on"]["exact_match"] == 1.0 and rows["runs-on"]["right_per_hole"] == 1.0


async def test_an_eval_with_the_show_filter_reports_less_than_everything_shown(engine):
    rows = await _eval_rows(engine)
    summary = runner.summarise(list(rows.values()), {"specialist": {"kind": "local"}})
    metrics = summary["specialist"]["metrics"]
    assert metrics["shown"]["mean"] == 1 / 3  # only the sure, valid answer
    assert metrics["precision"]["mean"] == 1.0 and metrics["precision"]["n"] == 1
    assert metrics["right_per_hole"]["mean"] == 1 / 3
    assert metrics["exact_match"]["n"] == 3  # scored over every answer
