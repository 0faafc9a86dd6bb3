"""One module per task: each owns its prompts (specialist, fair base, baseline LLM),
post-processing, answer checks, edit, eval scores and training examples.

The server, the eval, the gate and training look a task up here and call its functions,
rather than switching on its name.
"""

from __future__ import annotations

from types import ModuleType

from covey_specialists.tasks import completion, doc, refactor
from covey_specialists.tasks.common import Prompt

TASKS: dict[str, ModuleType] = {m.NAME: m for m in (completion, doc, refactor)}
NAMES = tuple(TASKS)
FORMATS = frozenset(f for m in TASKS.values() for f in m.FORMATS)
"""Every prompt format some task can build."""


def task_module(name: str) -> ModuleType:
    """The module of task ``name``; ValueError naming the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(NAMES)})") from None


def stream_done(prompt: Prompt, text: str) -> bool:
    """Whether a streamed answer to ``prompt`` holds all that post-processing will keep."""
    return task_module(prompt.task).stream_done(prompt, text)
