"""Per-document debounce where the latest request wins, and every request is answered.

A new request for a document supersedes the one before it: the older one's task is
cancelled (which closes its engine stream) and its caller gets ``None`` — an empty answer,
never silence. A request cancelled by the client (``$/cancelRequest``) propagates the
cancellation, so pygls answers it with RequestCancelled. After the debounce the document
version is checked again; a stale request gets ``None`` without calling the model. The
debounce is :class:`~covey_server.pacing.Pacing`'s: longer while the engine is loaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from covey_server.pacing import Pacing

log = logging.getLogger("covey.scheduler")

T = TypeVar("T")


class Scheduler:
    def __init__(self, debounce_s: float = 0.075, adaptive: bool = True):
        self.pacing = Pacing(debounce_s, adaptive)
        self._latest: dict[str, asyncio.Task] = {}
        self.superseded = 0
        """How many requests were answered empty because a newer one arrived."""

    async def run(self, key: str, work: Callable[[], Awaitable[T]],
                  still_current: Callable[[], bool] = lambda: True) -> T | None:
        """Debounce, then ``work()`` unless superseded or stale; ``None`` when dropped."""
        self.pacing.request()
        previous = self._latest.get(key)
        if previous is not None and not previous.done():
            previous.cancel()
            self.superseded += 1
        task = asyncio.ensure_future(self._debounced(work, still_current))
        self._latest[key] = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                task.cancel()  # the client cancelled us: stop the work, answer RequestCancelled
                raise
            return None  # superseded by a newer request: answer empty
        finally:
            if self._latest.get(key) is task:
                del self._latest[key]

    async def _debounced(self, work: Callable[[], Awaitable[T]],
                         still_current: Callable[[], bool]) -> T | None:
        wait = self.pacing.wait_s()
        if wait > self.pacing.base_s:
            log.debug("waiting %.0f ms: the engine is loaded (%.2f)", wait * 1000,
                      self.pacing.load)
        if wait > 0:
            await asyncio.sleep(wait)
        if not still_current():
            log.debug("document changed during the debounce; not calling the model")
            return None
        return await work()

    def cancel(self, key: str) -> None:
        """Cancel the pending request for ``key`` (e.g. its document was closed)."""
        task = self._latest.pop(key, None)
        if task is not None:
            task.cancel()
            self.superseded += 1
