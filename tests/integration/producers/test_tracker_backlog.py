"""A backlog in the tracker's own queue is not a stalled link, through the real broker.

With local acknowledgement a client can queue writes faster than Kafka takes them, up to the
unshipped bound (256 MiB by default): over a slow link that is many seconds of events waiting in
the shipper's queue while every event handed to Kafka is confirmed in milliseconds. The stall
watch (`Shipper._watch_stall`) used to time the oldest *admitted* write, so a backlog longer
than the delivery timeout declared the link lost ("an event unconfirmed for 10 s"), started a
new epoch and sent the backlog to the dirty bitmap, over and over, with Kafka healthy. It times
the oldest event handed to Kafka instead.

Here a 1 s delivery timeout, and 240 MiB queued at once as 4 MiB writes shipped in 512 B events
(491,520 of them: seconds of work for the broker; 2 KiB events shipped within 2 s once events were
encoded in C and produced in batches): the tracker keeps its first epoch, reconnects
never, and publishes every event.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tidemark.core.volumes import VolumeSpec
from tidemark.producers.ship_window import Mode
from tidemark.producers.tracker import Tracker, TrackerOptions

from ...conftest import TidemarkTest
from .nbd_harness import wait_until

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
BS = 512
EVENT_BYTES = 512
VOLUME = "backlog0"
SIZE = 256 * MIB
WRITE_BYTES = 4 * MIB
WRITES = 60  # 240 MiB: within the unshipped bound set below
BOUND = 256 * MIB
TIMEOUT_MS = 1000


def test_a_queue_longer_than_the_delivery_timeout_keeps_the_link_and_the_epoch(
    tm: TidemarkTest, tmp_path: Path
) -> None:
    spec = VolumeSpec(VOLUME, SIZE, block_size=BS)
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(SIZE)
    folder = tm.settings.volume_state_dir("trackers", VOLUME)
    options = TrackerOptions(
        region_bytes=MIB, extent_bytes=EVENT_BYTES, delivery_timeout_ms=TIMEOUT_MS, unshipped_max_bytes=BOUND
    )
    data = os.urandom(WRITE_BYTES)
    with Tracker(spec, tm.clients, tm.topics, folder, image, options).start() as tracker:
        wait_until(lambda: tracker.connected and tracker.window.mode is Mode.SYNC, 30, "the link up")
        epoch = tracker.epoch
        started = time.monotonic()
        for index in range(WRITES):
            tracker.intent(index * WRITE_BYTES, WRITE_BYTES)
            tracker.submit_write(index * WRITE_BYTES, data)
        assert tracker.window.mode is Mode.SYNC, "the writes were meant to stay within the unshipped bound"
        tracker.wait_shipped(120)
        backlog_s = time.monotonic() - started
        stats = tracker.stats
    assert (stats.epoch, stats.reconnects, stats.dirty_recorded_blocks) == (epoch, 0, 0), (
        f"a healthy link was declared lost: {stats}"
    )
    assert backlog_s > 2 * TIMEOUT_MS / 1000, (
        f"everything was shipped within {backlog_s:.2f} s: no backlog longer than the delivery timeout "
        "was built, so this test shows nothing"
    )
    assert stats.events == WRITES * WRITE_BYTES // EVENT_BYTES
