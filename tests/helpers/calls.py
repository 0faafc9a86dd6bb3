"""ModelCall rows for tests, and a sink that keeps what it is given."""

from __future__ import annotations

import time

from covey_usage.calls import ModelCall, new_call_id


def make_call(**fields) -> ModelCall:
    """A finished completion call with plausible figures; ``fields`` override any of them."""
    base = dict(id=new_call_id(), task="completion", specialist="completion", model="completion",
                adapter="builtin:completion", base_model="smol", engine_url="http://127.0.0.1:1",
                client="editor", language="python", started_at=time.time() - 1,
                prompt_tokens=120, completion_tokens=30, ttft_ms=80.0, latency_ms=400.0,
                prompt_text="def add(a, b):\n    return ", completion_text="a + b")
    base.update(fields)
    return ModelCall(**base)


class Collect:
    """A CallSink that keeps every reported call, in order."""

    def __init__(self):
        self.calls: list[ModelCall] = []

    def record(self, call: ModelCall) -> None:
        self.calls.append(call)

    def by_source(self, source: str) -> list[ModelCall]:
        return [c for c in self.calls if c.source == source]
