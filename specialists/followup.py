"""Second passes that finish what a specialist's answer left out — a docstring's missing
parameters (:func:`covey_specialists.tasks.doc.follow_up`).

Each pass is a short continuation of the same prompt, through the same engine and model,
logged as a call of its own. Its LLM-equivalent price is only the words it adds: a
large model would have written them in its one answer, so no second request is counted.
"""

from __future__ import annotations

import dataclasses

from covey_specialists.client import EngineAnswer, EngineClient
from covey_specialists.table import Specialist
from covey_specialists.tasks import CONTINUATION, estimate_tokens, task_module
from covey_specialists.tasks.common import Prompt


async def finish_answer(engine: EngineClient, spec: Specialist, prompt: Prompt,
                        first: EngineAnswer, *, language: str = "", model: str | None = None,
                        eval_run_id: str | None = None) -> EngineAnswer:
    """``first`` finished by its task's ``follow_up`` (when it has one and ``first`` is
    usable); the extra calls are in ``followups``. A failed pass ends the passes and keeps
    what was added before it."""
    if not first.ok:
        return first
    filler = task_module(prompt.task).follow_up(prompt, first.text,
                                                first.finish_reason == "length")
    if filler is None:
        return first
    prompt = first.prompt or prompt  # what the engine saw, cut to its window if need be
    calls = []
    # the line ends the entry; the specialist's own stops still apply, since the engine
    # streams its end-of-turn token as text (see covey_specialists.client)
    stop = ["\n", *spec.stop]
    while (name := filler.pending()) is not None:
        added = filler.continuation(name)
        ask = dataclasses.replace(prompt, text=prompt.text + added,
                                  meta={**prompt.meta, CONTINUATION: added})
        part = await engine.complete(spec, ask, language=language, model=model,
                                     max_tokens=filler.tokens_per_entry, eval_run_id=eval_run_id,
                                     extra_body={"stop": stop}, report=False)
        part.call.llm_prompt_tokens = 0
        part.call.llm_completion_tokens = estimate_tokens(part.text)
        engine.report(part.call)
        calls.append(part.call)
        if not part.ok:
            break
        filler.add(name, part.text)
    return dataclasses.replace(first, text=filler.text, followups=calls)
