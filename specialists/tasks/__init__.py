"""One module per task: each owns its prompts (specialist, fair base, baseline LLM),
post-processing, answer checks, edit, eval scores and training examples, in the shape
:class:`~covey_specialists.tasks.protocol.TaskModule` declares.

The server, the eval, the gate and training look a task up here and call its functions,
rather than switching on its name. :data:`TASKS` is the one list of tasks.
"""

from __future__ import annotations

import dataclasses
import math

from covey_specialists.tasks import completion, doc, next_edit, refactor
from covey_specialists.tasks.common import Prompt
from covey_specialists.tasks.protocol import TaskModule, Where

__all__ = ["TASKS", "NAMES", "FORMATS", "TaskModule", "Where", "task_module"]

TASKS: dict[str, TaskModule] = {m.NAME: m for m in (completion, doc, refactor, next_edit)}
NAMES = tuple(TASKS)
FORMATS = frozenset(f for m in TASKS.values() for f in m.FORMATS)
"""Every prompt format some task can build."""


def task_module(name: str) -> TaskModule:
    """The module of task ``name``; ValueError naming the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(NAMES)})") from None


def stream_done(prompt: Prompt, text: str) -> bool:
    """Whether a streamed answer to ``prompt`` holds all that post-processing will keep."""
    return task_module(prompt.task).stream_done(prompt, text)


def finished_part(prompt: Prompt, text: str) -> str:
    """What of an answer to ``prompt`` that ``max_tokens`` cut off is finished (all of it
    for a task that continues such answers itself)."""
    return task_module(prompt.task).finished_part(prompt, text)


CONTINUATION = "continuation"
"""Prompt meta: text a follow-up added after the task's own prompt (the answer so far)."""


def shrink(prompt: Prompt, keep: float) -> Prompt | None:
    """``prompt`` rebuilt with about ``keep`` (0–1) of its context, for a context window
    it overflows (:mod:`covey_specialists.context_window`), any follow-up's continuation
    kept at its end; None for a task whose context cannot be cut (a refactor rewrites all
    of its selection)."""
    shorter = task_module(prompt.task).shrink(prompt, keep)
    if shorter is None:
        return None
    added = prompt.meta.get(CONTINUATION, "")
    return dataclasses.replace(shorter, text=shorter.text + added,
                               meta={**shorter.meta, CONTINUATION: added}) if added else shorter


CHARS_PER_TOKEN = 4.0
"""OpenAI's rule of thumb for English and code: about four characters per token."""
CHAT_TOKENS_PER_MESSAGE = 4
"""Tokens a chat API adds per message (role and separators)."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def llm_equivalent_tokens(spec, prompt: Prompt, completion: str) -> tuple[int, int]:
    """(prompt, completion) tokens the baseline LLM would be charged for this call: its
    own chat request built by the task module (system turn, the file with the cursor…),
    and the answer, both estimated at :data:`CHARS_PER_TOKEN` characters a token."""
    req = task_module(prompt.task).baseline_request(spec, prompt, "chat")
    if req.messages:
        sent = sum(estimate_tokens(m.get("content") or "") + CHAT_TOKENS_PER_MESSAGE
                   for m in req.messages)
    else:
        sent = estimate_tokens(req.prompt or "")
    return sent, estimate_tokens(completion)
