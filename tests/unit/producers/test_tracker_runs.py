"""`Tracker.submit_writes`, the NBD server's C path into the tracker (a run of writes per call),
without Kafka: it takes a prefix of the run and refuses what `submit_write` refuses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec
from tidemark.producers.exceptions import TrackerError
from tidemark.producers.tracker import AckMode, Tracker, TrackerFencedError, TrackerOptions

from .unreachable import closed_port

MIB = 1 << 20
BS = 4096


def _tracker(tmp_path: Path, ack: AckMode) -> Tracker:
    settings = Settings(state_dir=tmp_path / "state")
    clients = KafkaClients(settings, KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}"))
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(16 * MIB)
    options = TrackerOptions(ack=ack, region_bytes=MIB, reconnect_interval=60.0)
    return Tracker(VolumeSpec("runs0", 16 * MIB), clients, Topics("offline"), tmp_path / "tracker", image, options)


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[Tracker]:
    """Kafka unreachable: every write taken is marked dirty (ahead)."""
    with _tracker(tmp_path, AckMode.LOCAL).start() as started:
        yield started


def test_a_run_is_taken_whole_and_counted(tracker: Tracker) -> None:
    run = [(0, bytes(BS)), (3 * MIB, bytes(2 * BS)), (0, bytes(BS))]
    tracker.intent_run([(offset, len(data)) for offset, data in run])
    assert tracker.submit_writes(run) == 3
    assert list(tracker.dirty.snapshot()) == [0, 768, 769]
    stats = tracker.stats
    assert (stats.writes, stats.bytes) == (3, 4 * BS)


def test_a_run_stops_at_the_first_write_refused_and_raises_only_when_it_is_the_first(tracker: Tracker) -> None:
    assert tracker.submit_writes([(0, bytes(BS)), (BS + 1, bytes(BS)), (2 * BS, bytes(BS))]) == 1
    assert tracker.submit_writes([(16 * MIB - BS, bytes(BS)), (16 * MIB, bytes(BS))]) == 1
    with pytest.raises(TrackerError, match="ends past the volume size"):
        tracker.submit_writes([(16 * MIB, bytes(BS))])
    assert list(tracker.dirty.snapshot()) == [0, 4095]
    tracker.fence("volume runs0: the registry moved the primary to generation 3")
    with pytest.raises(TrackerFencedError):
        tracker.submit_writes([(0, bytes(BS))])


def test_a_run_needs_local_acknowledgement(tmp_path: Path) -> None:
    with (
        _tracker(tmp_path, AckMode.KAFKA).start() as started,
        pytest.raises(TrackerError, match="local acknowledgement"),
    ):
        started.submit_writes([(0, bytes(BS))])
