"""The one shape every task module has, so that every caller — the language server, the
one-shot commands, the demo, the eval and the gate — takes the same road to the model:

1. ``plan(doc, where, spec)``: the prompt for a place in a document, and what finishing
   needs (a snapshot of the document, the span to replace);
2. the router asks the model (:meth:`covey_specialists.routing.Router.serve`), checking
   answers with ``problem(plan, raw)`` and, where the task shows only sure answers, hiding
   unsure ones;
3. ``finish(plan, raw)``: the :class:`~covey_specialists.tasks.common.Edit` the editor
   applies, or :class:`~covey_specialists.tasks.common.EditError` saying why none.

A new task is one module that satisfies :class:`TaskModule` plus a row in the specialists
table; ``tests/unit/test_task_protocol.py`` checks every registered module against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from covey_specialists.document import Document
from covey_specialists.repo_context import Workspace
from covey_specialists.tasks.common import BaselineRequest, Edit, Prompt, Run, TrainingExample


@dataclass(frozen=True)
class Where:
    """Where in a document a task works, and what the user asked there.

    Each task reads the fields it needs: completion the cursor (``offset``) and whether a
    block is wanted (``multiline``); doc a line inside the definition (``line``); refactor
    the selected lines (``line`` to ``last_line``) and the ``instruction``; next-edit the
    cursor and the ``edits`` before it."""

    offset: int = 0
    """The cursor, as a string index of the document."""
    line: int = 0
    """0-based."""
    last_line: int | None = None
    """0-based, inclusive; None: the same as ``line``."""
    instruction: str = ""
    multiline: bool = False
    edits: tuple = ()
    """next-edit: the user's recent edits
    (:class:`~covey_specialists.edit_history.RecentEdit`), most recent last."""


class Plan(Protocol):
    """What ``plan`` returns: the prompt, and the document it was planned on."""

    prompt: Prompt
    doc: Document


@runtime_checkable
class TaskModule(Protocol):
    """A task (completion, doc, refactor, …): everything that differs between tasks."""

    NAME: str
    FORMATS: set[str]
    FAIR_BASE_FORMAT: str
    """The prompt format the untuned base is sent for a fair comparison."""
    SHOWS_ONLY_SURE: bool
    """Whether the editor hides this task's unsure answers (``min_show_logprob``): inline
    completion, which the user did not ask for; never a docstring or refactor they did."""
    VALIDATE_BY_RUNNING: bool
    EXECUTION_METRIC: str | None
    GATE_PRIMARY: str
    GATE_SECONDARY: str
    GATE_MAX_NEW_TOKENS: int
    SPREAD_HELDOUT: bool
    TRAIN_BUDGET: int
    """Characters of prompt context in a training example."""
    TRAIN_PER_FILE: int
    """Training examples taken per source file by default."""
    CARD_TEXT: str
    """What the task's adapter does, for its model card."""

    # the road every caller takes
    def plan(self, doc: Document, where: Where, spec: Any, *, fair_base: bool = False,
             workspace: Workspace | None = None) -> Plan: ...

    def finish(self, plan: Any, raw: str) -> Edit: ...

    def problem(self, plan: Any, raw: str) -> str | None: ...

    def label(self, plan: Any) -> str: ...

    # streaming and the context window (the engine client)
    def stream_done(self, prompt: Prompt, text: str) -> bool: ...

    def finished_part(self, prompt: Prompt, text: str) -> str: ...

    def shrink(self, prompt: Prompt, keep: float) -> Prompt | None: ...

    def follow_up(self, prompt: Prompt, raw: str, cut_short: bool) -> Any: ...

    # the baseline LLM
    def baseline_request(self, spec: Any, prompt: Prompt, api: str) -> BaselineRequest: ...

    def baseline_reply(self, raw: str, api: str, prompt: Prompt) -> str: ...

    # the eval
    def eval_target(self, task: Any) -> tuple[Document, Where]: ...

    def oracle(self, task: Any) -> str: ...

    def scores(self, task: Any, answer: str) -> dict: ...

    def combined_scores(self, row: dict) -> dict: ...

    def execution(self, task: Any, answer: str) -> Run | None: ...

    # training and the gate
    def training_example(self, *args: Any, **kwargs: Any) -> TrainingExample: ...

    def gate_base_prompt(self, prompt_text: str, meta: dict) -> str: ...

    def gate_postprocess(self, prompt_text: str, meta: dict, raw: str) -> str: ...

    def gate_scores(self, meta: dict, output: str) -> dict[str, float]: ...
