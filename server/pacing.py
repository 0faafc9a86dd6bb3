"""How long a completion request waits after a keystroke before it calls the model.

While the engine answers at its unloaded pace the wait is the configured debounce, so one
person at an idle engine sees ghost text as soon as ever. When the engine is shared and
busy, a call made mid-word only queues behind everyone's others and is superseded by the
next keystroke before it answers: on two CPU cores sixteen people typing kept the engine
full of such calls, and the calls at line ends, the ones people wait for, timed out
(docs/benchmarks.md). So the wait stretches towards the user's own pause, twice their
usual gap between keystrokes, and calls are made when they stop typing.

The load is read from this session's own calls, nothing else: the time to first token
against the quickest one seen lately. A call superseded or timed out before its first
token says only that the time was at least that long, which is enough to raise the
estimate; estimates fall back a fifth of the way per quicker answer, so the wait does not
flap between two keystrokes.
"""

from __future__ import annotations

import statistics
import time
from collections import deque

TYPING_GAP_MAX_S = 1.0
"""A longer gap between two requests is a pause, not typing."""
PAUSE_FACTOR = 2.0
"""A pause is this many of the user's usual gaps between keystrokes."""
PAUSE_WAIT_MAX_S = 0.6
"""The longest wait, however slowly someone types."""
USUAL_GAP_S = 0.2
"""The gap assumed until the user's own is known (5 keystrokes a second)."""
SLOW_WITHOUT_FLOOR_S = 1.0
"""Before any call has answered, one that went this long without a token means load."""
QUICK, SLOW = 1.5, 3.0
"""An estimate up to ``QUICK`` times the quickest answer is the engine's own pace (prompts
differ in length); from ``SLOW`` times it the engine is loaded."""
FALL_BACK = 0.2
"""How far the estimate moves towards a quicker answer."""
WINDOW = 64
"""Recent answers and gaps kept."""


class Pacing:
    """The wait before a model call, from the configured debounce and the engine's load."""

    def __init__(self, base_s: float, adaptive: bool = True):
        self.base_s = base_s
        self.adaptive = adaptive
        self._gaps: deque[float] = deque(maxlen=WINDOW)
        self._ttfts: deque[float] = deque(maxlen=WINDOW)
        self._estimate: float | None = None
        self._last_request: float | None = None

    def request(self, now: float | None = None) -> None:
        """A completion request arrived (one per keystroke from an editor)."""
        now = time.monotonic() if now is None else now
        if self._last_request is not None and 0 < now - self._last_request < TYPING_GAP_MAX_S:
            self._gaps.append(now - self._last_request)
        self._last_request = now

    def answered(self, ttft_s: float) -> None:
        """A call's first token came after ``ttft_s``."""
        self._ttfts.append(ttft_s)
        if self._estimate is None or ttft_s >= self._estimate:
            self._estimate = ttft_s
        else:
            self._estimate += FALL_BACK * (ttft_s - self._estimate)

    def unanswered(self, waited_s: float) -> None:
        """A call ended (superseded, timed out) with no token after ``waited_s``."""
        if self._estimate is None or waited_s > self._estimate:
            self._estimate = waited_s

    @property
    def load(self) -> float:
        """0 while calls answer at the engine's own pace, 1 when they wait in a queue."""
        if self._estimate is None:
            return 0.0
        if not self._ttfts:
            return 1.0 if self._estimate >= SLOW_WITHOUT_FLOOR_S else 0.0
        ratio = self._estimate / max(min(self._ttfts), 1e-3)
        return min(1.0, max(0.0, (ratio - QUICK) / (SLOW - QUICK)))

    def wait_s(self) -> float:
        if not self.adaptive:
            return self.base_s
        gap = statistics.median(self._gaps) if self._gaps else USUAL_GAP_S
        pause = min(PAUSE_WAIT_MAX_S, PAUSE_FACTOR * gap)
        return self.base_s + self.load * max(0.0, pause - self.base_s)
