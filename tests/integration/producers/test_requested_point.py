"""A requested point holds every write the tracker acknowledged (`--ack local`), through the real
broker and the tracker's control socket.

- Asked on the control socket right after 32 MiB of acknowledged writes (most of them only in
  the dirty bitmap: pull-ahead with a 1 MiB bound), the REQUESTED marker lands after every one
  of them: the writes before it rebuild the image exactly.
- `tidemark rp create` goes through a tracker of the volume when one answers on this host, and
  writes the marker to Kafka directly (saying so) when none does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tidemark.core.volumes import VolumeSpec
from tidemark.producers.control_socket import request_marker
from tidemark.producers.tracker import Tracker, TrackerOptions

from ...conftest import CliRunner, TidemarkTest
from .nbd_harness import block_writes, first_difference, markers, read_journal, rebuild

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
WRITE_BYTES = 64 * 1024
VOLUME = "asked0"


def _tracker(tm: TidemarkTest, image: Path, unshipped_max_bytes: int) -> Tracker:
    spec = VolumeSpec(VOLUME, 64 * MIB)
    with image.open("wb") as handle:
        handle.truncate(spec.size)
    folder = tm.settings.volume_state_dir("trackers", VOLUME)
    options = TrackerOptions(region_bytes=MIB, unshipped_max_bytes=unshipped_max_bytes)
    return Tracker(spec, tm.clients, tm.topics, folder, image, options).start()


def test_a_marker_asked_on_the_control_socket_lands_after_every_acknowledged_write(
    tm: TidemarkTest, tmp_path: Path
) -> None:
    image = tmp_path / "disk.img"
    with _tracker(tm, image, unshipped_max_bytes=MIB) as tracker:
        fd = os.open(image, os.O_WRONLY)
        try:
            for index in range(32 * MIB // WRITE_BYTES):
                offset = (index * 7 % 512) * WRITE_BYTES  # scattered over 32 MiB of the disk
                data = os.urandom(WRITE_BYTES)
                tracker.intent(offset, WRITE_BYTES)
                os.pwrite(fd, data, offset)
                assert tracker.submit_write(offset, data).done(), "local acknowledgement is immediate"
        finally:
            os.close(fd)
        assert tracker.at_risk().bytes > 0, "every write shipped already: the test shows nothing"
        assert request_marker(tracker.state.folder, "after-32MiB", timeout=30)
    events = read_journal(tm.clients, tm.topics.writes, VOLUME)
    asked = [e for e in events if e.type == "Marker" and e.record["kind"] == "REQUESTED"]
    assert [e.record["label"] for e in asked] == ["after-32MiB"]
    before = [e.record for e in events if e.type == "BlockWrite" and e.offset < asked[0].offset]
    expected = image.read_bytes()
    rebuilt = rebuild(before, len(expected))
    assert rebuilt == expected, f"the point misses acknowledged writes: {first_difference(rebuilt, expected, 4096)}"


def test_rp_create_goes_through_a_running_tracker_else_directly(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path
) -> None:
    cli("volume", "add", VOLUME, "--size", str(64 * MIB))
    with _tracker(tm, tmp_path / "disk.img", unshipped_max_bytes=256 * MIB):
        through = cli("rp", "create", "--volume", VOLUME, "--label", "via tracker")
        assert "through its tracker" in through.stdout
    direct = cli("rp", "create", "--volume", VOLUME, "--label", "direct")
    assert "written to Kafka directly" in direct.stdout and "no tracker of asked0 answered" in direct.stdout
    labels = [m["label"] for m in markers(read_journal(tm.clients, tm.topics.writes, VOLUME), "REQUESTED")]
    assert labels == ["via tracker", "direct"]
    assert not block_writes(read_journal(tm.clients, tm.topics.writes, VOLUME))
