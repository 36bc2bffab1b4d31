"""How fast the shipper drains the dirty bitmap: the drain yields to a client that keeps writing.

DRBD slows its resync to `c-min-rate` while application I/O goes to the device. The drain here
(the tracker "ahead": writes only marked dirty, then shipped from the image) does the same, so
the protected disk keeps its own speed through a burst that outruns Kafka:
- the client is *busy* while the bytes it marked dirty in the current or the previous period of
  `PERIOD_S` come to more than `min_bytes_per_s` a second;
- while it is busy, the drain ships `min_bytes_per_s`: a token bucket holding at most one
  period's worth, so the drain never bursts past that rate;
- otherwise the drain runs at full speed (the ship window's room is its only limit);
- and at full speed too once one busy spell has lasted `max_yield_s`: the tracker goes back to
  publishing every write only once the bitmap is empty, so a client writing faster than the pace
  but slower than the pipeline ships would otherwise keep it ahead for as long as it writes. A
  spell ends when the client is no longer busy, or when the drain has not looked for longer than
  two periods (the tracker was publishing every write meanwhile).

A block overwritten during the burst is shipped once, so a burst over a working set ships the
working set, not the bytes written. The RPO at risk (`ShipWindow.at_risk`) grows meanwhile, and
status and metrics show it. Seconds come from `clock` (monotonic): this paces work, it dates no
event.

Thread-safe: the write path calls `client_wrote`, the ship thread `allows`, `spent` and `delay`.
Invariant: `tokens <= min_bytes_per_s * PERIOD_S`; a run drained on the last token may take it
below zero, and the drain then waits until the bucket is positive again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_MIN_BYTES_PER_S = 8 << 20
"""The drain's rate under a busy client by default (`track nbd --drain-min-mib-s`)."""
MAX_YIELD_S = 30.0
"""The longest the drain yields to one busy spell of the client (`DrainPace.max_yield_s`)."""
PERIOD_S = 0.5
"""Length of the periods the client's dirty bytes are counted in, and the bucket's depth in time."""
MAX_DELAY_S = 0.05
"""The longest `delay` asked of the ship thread: it also watches the link and the queue."""


class DrainPace:
    def __init__(
        self, min_bytes_per_s: float, clock: Callable[[], float] = time.monotonic, max_yield_s: float = MAX_YIELD_S
    ) -> None:
        if min_bytes_per_s <= 0:
            raise ValueError(
                f"the drain's rate under a busy client must be positive, not {min_bytes_per_s} bytes/s "
                "(track nbd --drain-min-mib-s)"
            )
        self.min_bytes_per_s = float(min_bytes_per_s)
        self.max_yield_s = max_yield_s
        self._spell_start: float | None = None
        self._spell_seen = 0.0
        self.depth = self.min_bytes_per_s * PERIOD_S
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._period_start = now
        self._bytes_now = 0
        self._bytes_before = 0
        self._tokens = self.depth
        self._filled_at = now

    def client_wrote(self, nbytes: int) -> None:
        """The client wrote `nbytes` that were marked dirty (the write path, while ahead)."""
        with self._lock:
            self._roll(self._clock())
            self._bytes_now += nbytes

    def busy(self) -> bool:
        """Does the client write faster than the pace (now or in the period before)?"""
        with self._lock:
            return self._busy(self._clock())

    def allows(self) -> bool:
        """May the drain ship its next run now?"""
        with self._lock:
            now = self._clock()
            if not self._paced(now):
                return True
            self._refill(now)
            return self._tokens > 0

    def spent(self, nbytes: int) -> None:
        """The drain shipped a run of `nbytes` (counted against the bucket only while paced)."""
        with self._lock:
            now = self._clock()
            if self._paced(now):
                self._refill(now)
                self._tokens -= nbytes

    def delay(self) -> float:
        """Seconds until `allows` can say yes again (0 when it does now), at most `MAX_DELAY_S`."""
        with self._lock:
            now = self._clock()
            if not self._paced(now):
                return 0.0
            self._refill(now)
            if self._tokens > 0:
                return 0.0
            return min(MAX_DELAY_S, -self._tokens / self.min_bytes_per_s + 1e-3)

    def _paced(self, now: float) -> bool:
        """Busy, and this busy spell has lasted less than `max_yield_s`."""
        if not self._busy(now):
            self._spell_start = None
            return False
        if self._spell_start is None or now - self._spell_seen > 2 * PERIOD_S:
            self._spell_start = now
        self._spell_seen = now
        return now - self._spell_start < self.max_yield_s

    def _busy(self, now: float) -> bool:
        self._roll(now)
        return max(self._bytes_now, self._bytes_before) > self.min_bytes_per_s * PERIOD_S

    def _roll(self, now: float) -> None:
        elapsed = now - self._period_start
        if elapsed < PERIOD_S:
            return
        self._bytes_before = self._bytes_now if elapsed < 2 * PERIOD_S else 0
        self._bytes_now = 0
        self._period_start = now

    def _refill(self, now: float) -> None:
        self._tokens = min(self.depth, self._tokens + (now - self._filled_at) * self.min_bytes_per_s)
        self._filled_at = now
