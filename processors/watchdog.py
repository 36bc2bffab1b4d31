"""A deadline for blocking Kafka calls that the client library may never return from.

librdkafka's `send_offsets_to_transaction` can block past its timeout, indefinitely, once the
connection to the group coordinator went down (confluentinc/librdkafka#5456 and #5511): a broker
restart is enough, and the fault suite (tests/faults) hits it on most broker restarts. A worker
stuck there holds its partitions and emits nothing, for ever. The watchdog ends the process
instead, with EXIT_STUCK, like any other failed transaction: the supervisor restarts it, the new
worker (same transactional id) fences and aborts the open transaction and resumes from the last
committed state, so nothing is lost or emitted twice.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

EXIT_STUCK = 75
"""Exit code of a worker the watchdog ended (EX_TEMPFAIL: restart it)."""


def _exit_now() -> None:
    logging.shutdown()
    os._exit(EXIT_STUCK)


class Watchdog:
    """`guard(what, seconds)` around a call; if it is still inside after `seconds`, `on_expire` runs."""

    def __init__(self, on_expire: Callable[[], None] = _exit_now, interval: float = 0.5) -> None:
        self._on_expire = on_expire
        self._interval = interval
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._what = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="processor-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    @contextmanager
    def guard(self, what: str, seconds: float) -> Iterator[None]:
        with self._lock:
            self._deadline, self._what = time.monotonic() + seconds, what
        try:
            yield
        finally:
            with self._lock:
                self._deadline = None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                expired = self._deadline is not None and time.monotonic() > self._deadline
                what = self._what
                if expired:
                    self._deadline = None
            if expired:
                log.critical(
                    "%s did not return in time (a known librdkafka hang after a coordinator "
                    "outage); exiting with code %d so that a restart resumes from the last "
                    "committed transaction",
                    what, EXIT_STUCK,
                )  # fmt: skip
                self._on_expire()
