"""Client requests in progress, so background copying can step aside (the low-impact throttle).

The copier calls `wait_quiet` before each run it copies: it returns once no client request has
been running for `quiet` seconds, or after `max_wait` seconds whatever the clients do (so a
client that never pauses still lets the relocation progress, one run per `max_wait`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

QUIET_SECONDS = 0.002
MAX_WAIT_SECONDS = 0.1


class ClientActivity:
    def __init__(self, quiet: float = QUIET_SECONDS, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self.yielded = 0.0  # seconds the copier waited for clients in total
        self._busy = 0
        self._last_end = 0.0
        self._condition = threading.Condition()

    @contextmanager
    def request(self) -> Iterator[None]:
        with self._condition:
            self._busy += 1
        try:
            yield
        finally:
            with self._condition:
                self._busy -= 1
                self._last_end = time.monotonic()
                self._condition.notify_all()

    def wait_quiet(self) -> float:
        """Wait until clients paused for `quiet` seconds (at most `max_wait`); the seconds waited."""
        start = time.monotonic()
        deadline = start + self.max_wait
        with self._condition:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if self._busy == 0:
                    left = self._last_end + self.quiet - now
                    if left <= 0:
                        break
                    self._condition.wait(min(left, deadline - now))
                else:
                    self._condition.wait(deadline - now)
        waited = time.monotonic() - start
        self.yielded += waited
        return waited
