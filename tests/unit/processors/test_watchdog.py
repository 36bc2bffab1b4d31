"""The processor's watchdog ends a call stuck past its deadline, and only such a call."""

from __future__ import annotations

import threading
import time

from tidemark.processors.watchdog import Watchdog


def test_a_call_stuck_past_its_deadline_fires_once() -> None:
    fired = threading.Event()
    calls: list[float] = []

    def expire() -> None:
        calls.append(time.monotonic())
        fired.set()

    watchdog = Watchdog(on_expire=expire, interval=0.01).start()
    try:
        with watchdog.guard("a stuck call", 0.05):
            assert fired.wait(5), "the watchdog did not fire"
            time.sleep(0.1)
        assert len(calls) == 1
    finally:
        watchdog.close()


def test_calls_that_return_in_time_never_fire() -> None:
    calls: list[str] = []
    watchdog = Watchdog(on_expire=lambda: calls.append("fired"), interval=0.01).start()
    try:
        for _ in range(5):
            with watchdog.guard("a quick call", 0.2):
                time.sleep(0.01)
        time.sleep(0.3)  # past every deadline: none is armed any more
        assert calls == []
    finally:
        watchdog.close()
