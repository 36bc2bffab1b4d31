"""The tracker's drain yields to a busy client, through the real broker (`--ack local`).

A 1 MiB pull-ahead bound puts the tracker ahead at once. While the client goes on writing 64 KiB
blocks far faster than the drain's pace (1 MiB/s here), the drain ships about that pace, not
what the broker would take; once the client stops, it drains the rest at full speed, switches
back to publishing every write, and the journal rebuilds the image exactly.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tidemark.core.volumes import VolumeSpec
from tidemark.producers.drain_pace import PERIOD_S
from tidemark.producers.ship_window import Mode
from tidemark.producers.tracker import Tracker, TrackerOptions

from ...conftest import TidemarkTest
from .nbd_harness import block_writes, first_difference, read_journal, rebuild, wait_until

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
BS = 4096
WRITE_BYTES = 64 * 1024
VOLUME = "paced0"
SIZE = 64 * MIB
PACE = 1 * MIB
BUSY_S = 4.0


def test_the_drain_ships_its_pace_while_the_client_keeps_writing_then_catches_up(
    tm: TidemarkTest, tmp_path: Path
) -> None:
    spec = VolumeSpec(VOLUME, SIZE)
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(SIZE)
    folder = tm.settings.volume_state_dir("trackers", VOLUME)
    options = TrackerOptions(region_bytes=MIB, unshipped_max_bytes=MIB, drain_min_bytes_per_s=PACE)
    fd = os.open(image, os.O_WRONLY)
    try:
        with Tracker(spec, tm.clients, tm.topics, folder, image, options).start() as tracker:
            wait_until(lambda: tracker.connected and tracker.window.mode is Mode.SYNC, 30, "the link up")
            index = 0

            def write_one() -> None:
                nonlocal index
                offset = (index * 37 % (SIZE // WRITE_BYTES)) * WRITE_BYTES
                index += 1
                data = os.urandom(WRITE_BYTES)
                tracker.intent(offset, WRITE_BYTES)
                os.pwrite(fd, data, offset)
                tracker.submit_write(offset, data)

            for _ in range(64):  # 4 MiB at once: past the bound, so ahead
                write_one()
            assert tracker.window.mode is Mode.AHEAD
            started = time.monotonic()
            resynced_before = tracker.stats.resynced_blocks
            while time.monotonic() - started < BUSY_S:  # about 30 MiB/s, 30 times the pace
                write_one()
                time.sleep(0.002)
            busy_s = time.monotonic() - started
            resynced_busy = (tracker.stats.resynced_blocks - resynced_before) * BS
            # plus the runs in flight when counting started (drained before the pace saw a busy client)
            allowance = PACE * (busy_s + PERIOD_S) + 4 * options.extent_bytes
            assert resynced_busy <= allowance, f"drained {resynced_busy} bytes in {busy_s:.1f} s at a 1 MiB/s pace"
            assert resynced_busy >= PACE * busy_s / 4, f"the drain stalled: {resynced_busy} bytes in {busy_s:.1f} s"
            assert tracker.at_risk().dirty_bytes > 8 * MIB, "the client's writes were meant to outrun the pace"
            wait_until(lambda: tracker.window.mode is Mode.SYNC, 60, "drained at full speed once the client stopped")
    finally:
        os.close(fd)
    expected = image.read_bytes()
    rebuilt = rebuild(block_writes(read_journal(tm.clients, tm.topics.writes, VOLUME)), SIZE)
    assert rebuilt == expected, first_difference(rebuilt, expected, BS)
