"""Figure 10: `tidemark analytics` (detector on) keeps up with the tracker's sustained 64 KiB writes.

The tracker core publishes 64 KiB writes of one volume as fast as Kafka confirms them (as figure
1), while the analytics app consumes the journal; the app's /metrics counts the writes it handled
and how old the newest one was when handled. The value is the analytics throughput from the first
write until it handled the last one, against the tracker's own rate over the same writes: a ratio
near 1 means the consumer lag stayed bounded. Half of the writes carry text, half ciphertext-like
random bytes, so the sampler measures both (every 64 KiB write may be a sampled one).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
import urllib.request
from collections import deque
from concurrent.futures import Future

from tidemark.producers.tracker import Tracker, TrackerOptions

from .env import MIB, BenchEnv, Stage, free_port, stop_process, wait_for_port
from .results import Figure, ratio_at_least

WRITE = 65536
VOLUME_BYTES = 1 << 30
IN_FLIGHT_BYTES = 32 * MIB
CATCH_UP_TIMEOUT_S = 300.0
CATCH_UP_POLL_S = 0.05
_HANDLED = re.compile(r'^tidemark_analytics_events_total\{topic="writes"\} ([0-9.e+]+)$', re.MULTILINE)
_LAG = re.compile(r"^tidemark_analytics_consumer_lag_seconds ([0-9.e+]+)$", re.MULTILINE)
_HELD = re.compile(r"^tidemark_analytics_journal_partitions ([0-9.e+]+)$", re.MULTILINE)
READY_TIMEOUT_S = 120.0


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def _wait_for_journal(port: int, app: subprocess.Popen[bytes]) -> None:
    """Until the app's journal reader holds the writes partitions (its consumer group settled)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ((held := _HELD.search(_metrics(port))) and float(held.group(1)) >= 1):
        if time.monotonic() > deadline or app.poll() is not None:
            raise RuntimeError(f"the analytics journal reader holds no partition after {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)


def _scrape(port: int) -> tuple[int, float]:
    text = _metrics(port)
    handled, lag = _HANDLED.search(text), _LAG.search(text)
    return (int(float(handled.group(1))) if handled else 0), (float(lag.group(1)) if lag else 0.0)


def _payloads() -> list[bytes]:
    rng = random.Random(3)
    words = b"backup ledger quarterly region order parts returns finished time ".split()
    text = b" ".join(rng.choice(words) for _ in range(WRITE // 4))[:WRITE]
    return [text, os.urandom(WRITE)]


def measure(stage: Stage, total_bytes: int) -> tuple[float, float, float, int]:
    """(tracker MB/s, analytics MB/s, worst lag seen in s, writes) over `total_bytes` of writes."""
    spec = stage.register("hot", VOLUME_BYTES)
    port = free_port()
    env_log = stage.root / "analytics.log"
    os.environ["TIDEMARK_ANALYTICS_WEB_PORT"] = str(port)
    app = stage.cli("analytics", log=env_log)
    try:
        wait_for_port(port, app, timeout=120)
        _wait_for_journal(port, app)
        count = total_bytes // WRITE
        payloads = _payloads()
        options = TrackerOptions(extent_bytes=stage.settings.extent_bytes)
        folder = stage.settings.volume_state_dir("trackers", "hot")
        worst = 0.0
        with Tracker(spec, stage.clients, stage.topics, folder, None, options).start() as tracker:
            pending: deque[Future[None]] = deque()
            started = time.perf_counter()
            for i in range(count):
                pending.append(tracker.submit_write((i * WRITE) % VOLUME_BYTES, payloads[i % 2]))
                if len(pending) > IN_FLIGHT_BYTES // WRITE:
                    pending.popleft().result(60)
                if i % 512 == 0:
                    worst = max(worst, _scrape(port)[1])
            for future in pending:
                future.result(60)
            tracked = time.perf_counter() - started
            # Still inside the tracker's block: its stop (flush, checkpoint) is not the app's time.
            deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
            while (seen := _scrape(port))[0] < count:
                worst = max(worst, seen[1])
                if time.monotonic() > deadline or app.poll() is not None:
                    raise RuntimeError(f"analytics handled {seen[0]} of {count} writes; log {env_log}")
                time.sleep(CATCH_UP_POLL_S)
            caught_up = time.perf_counter() - started
    finally:
        os.environ.pop("TIDEMARK_ANALYTICS_WEB_PORT", None)
        stop_process(app)
    return count * WRITE / tracked / 1e6, count * WRITE / caught_up / 1e6, worst, count


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    with env.stage("analytics") as stage:
        tracker, analytics, worst, count = measure(stage, (256 if quick else 1024) * MIB)
    note = (
        f"{count} writes, half text, half random; worst age of the newest handled write while writing: "
        f"{worst:.2f} s (consumer lag); one partition, one analytics worker"
    )
    name = "analytics keeps up with the tracker, 64 KiB writes, detector on"
    anchor = "tracker core over the same writes"
    return [Figure("10", name, analytics, "MB/s", anchor, tracker, ratio_at_least(0.9), [note])]
