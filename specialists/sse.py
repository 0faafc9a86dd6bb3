"""Server-sent events from OpenAI-compatible streams: one parsed JSON chunk per event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx


async def sse_chunks(response: httpx.Response, who: str,
                     error: type[Exception]) -> AsyncIterator[dict]:
    """Yield each ``data:`` chunk until ``[DONE]``; a malformed chunk or an error event
    raises ``error`` with a message naming ``who`` answered."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise error(f"malformed stream chunk: {data[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise error(f"malformed stream chunk: {data[:80]!r}")
        if "error" in chunk:
            raise error(f"{who} error: {chunk['error']}")
        yield chunk
