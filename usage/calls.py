"""The record of one model call, and the single interface every call is reported through.

The engine client fills in what it measured; the usage log (``covey_usage``) adds
cost and persists it. Anything that makes model calls takes a :class:`CallSink`.
"""

from __future__ import annotations

import logging
import os
import time
import typing
from dataclasses import asdict, dataclass, fields
from typing import Protocol

log = logging.getLogger("covey.calls")

STATUSES = ("ok", "cancelled", "error", "timeout", "escalated", "invalid", "withheld")


def new_call_id() -> str:
    """A time-sortable id: 12 hex digits of milliseconds, then 10 random hex digits."""
    return f"{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


@dataclass
class ModelCall:
    id: str
    task: str
    specialist: str
    model: str
    """The served model name sent in the request (adapter name, or ``base``)."""
    adapter: str
    base_model: str
    engine_url: str
    client: str = "cli"
    """Who asked: editor, eval or cli."""
    language: str = ""
    started_at: float = 0.0
    """Unix time of the request."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    status: str = "ok"
    error: str = ""
    prompt_text: str = ""
    completion_text: str = ""
    mean_logprob: float | None = None
    min_logprob: float | None = None
    source: str = "specialist"
    """``specialist`` or ``baseline``: where the answer came from."""
    eval_run_id: str | None = None
    engine_seconds: float | None = None
    cpu_seconds: float | None = None
    energy_j: float | None = None
    device: str = ""
    llm_prompt_tokens: int | None = None
    """Tokens the baseline LLM would be sent for this answer, in its own prompt format
    (an estimate); None: the call's own counts are used."""
    llm_completion_tokens: int | None = None
    """Tokens the baseline LLM would write for this answer (an estimate)."""
    local_cost_usd: float | None = None
    llm_cost_usd: float | None = None

    def take_usage(self, chunk: dict) -> None:
        """Token counts from a stream chunk's usage object, when it has one."""
        usage = chunk.get("usage")
        if usage:
            self.prompt_tokens = usage.get("prompt_tokens") or 0
            self.completion_tokens = usage.get("completion_tokens") or 0

    def mark_text(self, piece: str, started: float) -> None:
        """Time to first token: set by the first piece of text since ``started``."""
        if piece and self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - started) * 1000

    def as_dict(self) -> dict:
        return asdict(self)


TEXT_FIELDS = {"prompt_text": "prompt", "completion_text": "completion"}
"""Fields the usage log keeps under another name, as a length and a hash (and the text
itself only when the user opts in); every other field is a column of its own name."""


def _field_columns() -> dict[str, type]:
    hints = typing.get_type_hints(ModelCall)
    out = {}
    for f in fields(ModelCall):
        if f.name not in TEXT_FIELDS:  # ``float | None`` → float: every column takes NULL
            kinds = [k for k in typing.get_args(hints[f.name]) if k is not type(None)]
            out[f.name] = kinds[0] if kinds else hints[f.name]
    return out


FIELD_COLUMNS: dict[str, type] = _field_columns()
"""The usage log's columns that are :class:`ModelCall` fields, name → type, in field order:
a field added to ModelCall is a column (and a migration, :mod:`covey_usage.schema`) at once."""


class CallSink(Protocol):
    """Receives every finished model call. Must not block the caller."""

    def record(self, call: ModelCall) -> None: ...


class LogSink:
    """A sink that writes calls to the log (stderr or the log file); never to stdout."""

    def record(self, call: ModelCall) -> None:
        log.info("call %s task=%s specialist=%s status=%s tokens=%d+%d ttft=%sms latency=%.1fms",
                 call.id, call.task, call.specialist, call.status, call.prompt_tokens,
                 call.completion_tokens, None if call.ttft_ms is None else round(call.ttft_ms, 1),
                 call.latency_ms)
