"""Write events are handed to librdkafka in batches (`Shipper._flush_batch`), through the real
broker: with librdkafka's queue far smaller than one batch, every batch is refused in part
(`_QUEUE_FULL`) and the refused suffix queued again, so the partition still holds every write
once, in seq order, gap-free, in one epoch, each with its own bytes. `ship_queued`: runs as short as
the NBD server's event loop ships itself are shipped on the test's thread too, where a full queue
leaves the refused suffix to the ship thread (`_flush_batch(wait=False)`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tidemark.core.volumes import VolumeSpec
from tidemark.producers.ship_window import Mode
from tidemark.producers.shipper import SHIP_QUEUED_MAX_WRITES
from tidemark.producers.tracker import Tracker, TrackerOptions

from ...conftest import TidemarkTest
from .nbd_harness import block_writes, payload, read_journal, wait_until

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
BS = 4096
VOLUME = "batches0"
SIZE = 64 * MIB
RUNS = 40
RUN = 64  # writes per call: one batch of events each


@pytest.mark.parametrize("ship_queued", [False, True], ids=["ship-thread", "ship-queued"])
def test_a_librdkafka_queue_smaller_than_a_batch_loses_and_reorders_nothing(
    tm: TidemarkTest, tmp_path: Path, ship_queued: bool
) -> None:
    volume = f"{VOLUME}{int(ship_queued)}"
    spec = VolumeSpec(volume, SIZE)
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(SIZE)
    folder = tm.settings.volume_state_dir("trackers", volume)
    options = TrackerOptions(region_bytes=MIB, queue_max_kbytes=64)  # 16 events of 4 KiB at most
    written: list[tuple[int, bytes]] = []
    run_length = SHIP_QUEUED_MAX_WRITES if ship_queued else RUN
    with Tracker(spec, tm.clients, tm.topics, folder, image, options).start() as tracker:
        wait_until(lambda: tracker.connected and tracker.window.mode is Mode.SYNC, 30, "the link up")
        for number in range(RUNS * RUN // run_length):
            first = number * run_length
            run = [((first + index) % (SIZE // BS) * BS, os.urandom(BS)) for index in range(run_length)]
            tracker.intent_run([(offset, len(data)) for offset, data in run])
            assert tracker.submit_writes(run) == run_length
            written.extend(run)
            if ship_queued:  # runs of 4 until librdkafka's 16 places are full, then the rest refused
                tracker.ship_queued()
            if number == 0:  # the epoch's first seq is taken by the ship thread (`_may_assign_seqs`)
                tracker.wait_shipped(60)
        tracker.wait_shipped(60)
        stats = tracker.stats
    assert (stats.events_shipped_queued > 0) == ship_queued, stats
    assert (stats.reconnects, stats.dirty_recorded_blocks, stats.events) == (0, 0, RUNS * RUN), stats
    events = block_writes(read_journal(tm.clients, tm.topics.writes, volume))
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(seqs[0], seqs[0] + RUNS * RUN)), "the seqs are not gap-free and in order"
    assert [(event["offset"], payload(event)) for event in events] == written
