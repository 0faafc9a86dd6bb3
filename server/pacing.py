"""How long a completion request waits after a keystroke before it calls the model.

A call made mid-word is worth making only if its answer can come before the next
keystroke supersedes it. While the engine's first token comes within the user's usual gap
between keystrokes, the wait is the configured debounce, so one person at an idle engine
sees ghost text as soon as ever. When a shared engine is busy, mid-word calls only queue
behind everyone's others and are superseded unanswered: on two CPU cores, sixteen people
typing kept the engine full of them, and the calls at line ends, the ones people wait for,
timed out (docs/benchmarks.md). So as the time to first token grows from one gap to two,
the wait stretches to the user's pause (twice their usual gap) and calls are made when
they stop typing.

The time to first token is read from this session's own calls. A call superseded or
timed out before its first token says only that it was at least that long, which is
enough to raise the estimate; the estimate falls a fifth of the way per quicker answer,
so the wait does not flap from one keystroke to the next.
"""

from __future__ import annotations

import statistics
import time
from collections import deque

from covey_usage.calls import ModelCall

TYPING_GAP_MAX_S = 1.0
"""A longer gap between two requests is a pause, not typing."""
PAUSE_FACTOR = 2.0
"""A pause is this many of the user's usual gaps between keystrokes."""
PAUSE_WAIT_MAX_S = 0.6
"""The longest wait, however slowly someone types."""
USUAL_GAP_S = 0.2
"""The gap assumed until the user's own is known (5 keystrokes a second)."""
FALL_BACK = 0.2
"""How far the estimate moves towards a quicker answer."""
WINDOW = 64
"""Recent gaps kept."""


class Pacing:
    """The wait before a model call, from the configured debounce and the engine's load."""

    def __init__(self, base_s: float, adaptive: bool = True):
        self.base_s = base_s
        self.adaptive = adaptive
        self._gaps: deque[float] = deque(maxlen=WINDOW)
        self._estimate: float | None = None
        self._last_request: float | None = None

    def request(self, now: float | None = None) -> None:
        """A completion request arrived (one per keystroke from an editor)."""
        now = time.monotonic() if now is None else now
        if self._last_request is not None and 0 < now - self._last_request < TYPING_GAP_MAX_S:
            self._gaps.append(now - self._last_request)
        self._last_request = now

    def observe(self, call: ModelCall) -> None:
        """A finished call: only completion calls to the engine say how it paces them."""
        if call.task != "completion" or call.source != "specialist":
            return
        if call.ttft_ms is not None:
            self.answered(call.ttft_ms / 1000)
        elif call.status in ("cancelled", "timeout"):
            self.unanswered(call.latency_ms / 1000)

    def answered(self, ttft_s: float) -> None:
        """A call's first token came after ``ttft_s``."""
        if self._estimate is None or ttft_s >= self._estimate:
            self._estimate = ttft_s
        else:
            self._estimate += FALL_BACK * (ttft_s - self._estimate)

    def unanswered(self, waited_s: float) -> None:
        """A call ended (superseded, timed out) with no token after ``waited_s``."""
        if self._estimate is None or waited_s > self._estimate:
            self._estimate = waited_s

    @property
    def gap_s(self) -> float:
        """The user's usual gap between keystrokes."""
        return statistics.median(self._gaps) if self._gaps else USUAL_GAP_S

    @property
    def load(self) -> float:
        """0 while the first token comes within one gap, 1 from two gaps on."""
        if self._estimate is None:
            return 0.0
        return min(1.0, max(0.0, self._estimate / self.gap_s - 1.0))

    def wait_s(self) -> float:
        """Seconds to wait before this request calls the model."""
        if not self.adaptive:
            return self.base_s
        pause = min(PAUSE_WAIT_MAX_S, PAUSE_FACTOR * self.gap_s)
        return self.base_s + self.load * max(0.0, pause - self.base_s)
