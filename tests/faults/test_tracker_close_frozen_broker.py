"""A tracker closes while every broker is frozen (SIGSTOP): no error from Kafka, no answer either.

The ship thread then waits, holding the shipper's lock: for room in librdkafka's queue (64 KiB
here: 16 events), or for the checkpoint it unsettles before its first seq. The poll thread, which
would declare the link lost after the delivery timeout, ends at stop, and `Shipper.stop` takes that
lock, so those waits must end at stop: what librdkafka refused goes to the dirty bitmap, and close
returns."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from tidemark.core.volumes import VolumeSpec
from tidemark.localkafka import LocalCluster
from tidemark.producers.exceptions import TrackerError
from tidemark.producers.ship_window import Mode
from tidemark.producers.tracker import Tracker, TrackerOptions

from ..integration.producers.nbd_harness import wait_until
from .stack import FaultCluster

pytestmark = [pytest.mark.fault, pytest.mark.integration]

MIB = 1 << 20
BS = 4096
SIZE = 64 * MIB
RUN = 64
RUNS = 40
CLOSE_LIMIT_S = 60.0


@pytest.mark.parametrize("shipped_before", [False, True], ids=["first-write-frozen", "writing-when-frozen"])
def test_close_ends_while_every_broker_is_frozen(
    local_broker: LocalCluster, tmp_path: Path, shipped_before: bool
) -> None:
    """`first-write-frozen`: the first write waits for its checkpoint to be unsettled
    (`_may_assign_seqs`); `writing-when-frozen`: writes shipped just before, so the next ones wait
    for room in librdkafka's queue (`_flush_batch`)."""
    cluster = FaultCluster.on(local_broker, tmp_path / "state")
    spec = VolumeSpec("frozen0", SIZE)
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(SIZE)
    folder = cluster.settings.volume_state_dir("trackers", spec.name)
    # A delivery timeout far beyond the test: only stop can end the ship thread's wait.
    options = TrackerOptions(region_bytes=MIB, queue_max_kbytes=64, delivery_timeout_ms=600_000)
    tracker = Tracker(spec, cluster.clients, cluster.topics, folder, image, options).start()
    pids = [pid for pid in local_broker.status().pids if pid is not None]
    assert pids, "the test's broker does not run"
    closed = threading.Event()
    try:
        wait_until(lambda: tracker.connected and tracker.window.mode is Mode.SYNC, 60, "the link up")
        if shipped_before:  # within the checkpoint interval (1 s) of the freeze: no unsettle then
            run = [(index * BS, os.urandom(BS)) for index in range(4)]
            tracker.intent_run([(offset, len(data)) for offset, data in run])
            tracker.submit_writes(run)
            tracker.wait_shipped(30)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        for number in range(RUNS):
            run = [((number * RUN + index) * BS, os.urandom(BS)) for index in range(RUN)]
            tracker.intent_run([(offset, len(data)) for offset, data in run])
            assert tracker.submit_writes(run) == RUN
            tracker.ship_queued()  # more than 4 queued: wakes the ship thread
        wait_until(lambda: tracker.window.unshipped_bytes > 0, 30, "writes with librdkafka")

        def close() -> None:
            try:
                tracker.close(timeout=1)
            except TrackerError:
                pass  # "bytes still unconfirmed": expected with the brokers frozen
            finally:
                closed.set()

        threading.Thread(target=close, name="close-under-test", daemon=True).start()
        assert closed.wait(CLOSE_LIMIT_S), f"close() still waits after {CLOSE_LIMIT_S:.0f} s with the brokers frozen"
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    stats = tracker.stats
    assert stats.dirty_recorded_blocks > 0, stats
    assert stats.writes == RUNS * RUN + (4 if shipped_before else 0)
