"""Low-impact background I/O: back off while the source's read latency is high."""

from __future__ import annotations

import time
from collections.abc import Callable


class LatencyThrottle:
    """Keeps an exponential moving average of read latencies; above `threshold` it sleeps.

    The sleep doubles (from `min_backoff` up to `max_backoff`) for as long as the average stays
    above the threshold, and resets once it falls below. `throttled` is the total time slept.
    A `threshold` of None never throttles.
    """

    def __init__(
        self,
        threshold: float | None,
        *,
        alpha: float = 0.2,
        min_backoff: float = 0.01,
        max_backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.threshold = threshold
        self.average: float | None = None
        self.throttled = 0.0
        self._alpha = alpha
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._backoff = min_backoff
        self._sleep = sleep

    def observe(self, latency: float) -> None:
        """Record one read's latency (seconds) and back off if the average is too high."""
        if self.average is None:
            self.average = latency
        else:
            self.average = self._alpha * latency + (1 - self._alpha) * self.average
        if self.threshold is None or self.average <= self.threshold:
            self._backoff = self._min_backoff
            return
        self._sleep(self._backoff)
        self.throttled += self._backoff
        self._backoff = min(self._backoff * 2, self._max_backoff)
