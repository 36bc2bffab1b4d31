"""The tracker with Kafka unreachable (nothing listens on its bootstrap address; no broker, no
double), with Kafka acknowledgement: writes are acknowledged at once all the same, their blocks
are dirty, FLUSH markers are parked (not lost), the activity log covers the regions until the
dirty bitmap is durable, and a clean stop leaves the dirty blocks and the parked markers for the
next start and an empty activity log."""

from __future__ import annotations

from pathlib import Path

from pyroaring import BitMap

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec
from tidemark.producers.parked_markers import ParkedMarkers
from tidemark.producers.region_slots import FREE, SLOT
from tidemark.producers.ship_window import Mode
from tidemark.producers.tracker import AckMode, Tracker, TrackerOptions

from .unreachable import closed_port

MIB = 1 << 20
BS = 4096


def test_writes_while_kafka_is_unreachable_are_acknowledged_dirty_and_kept(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    clients = KafkaClients(settings, KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}"))
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(16 * MIB)
    folder = tmp_path / "tracker"
    options = TrackerOptions(ack=AckMode.KAFKA, region_bytes=MIB, reconnect_interval=60.0)
    tracker = Tracker(VolumeSpec("disk0", 16 * MIB), clients, Topics("offline"), folder, image, options).start()
    try:
        assert not tracker.connected and tracker.window.mode is Mode.AHEAD
        tracker.intent(3 * MIB, 2 * BS)
        assert {r for (r,) in SLOT.iter_unpack((folder / "activity.log").read_bytes()) if r != FREE} == {3}
        assert tracker.submit_write(3 * MIB, bytes(2 * BS)).done()
        assert tracker.submit_zero(5 * MIB, BS).done()
        assert tracker.submit_marker("FLUSH").result(timeout=10) is None
        tracker.flush(10)
        assert list(tracker.dirty.snapshot()) == [768, 769, 1280]
        stats = tracker.stats
        assert stats.writes == 2 and stats.events == 0 and stats.at_risk.dirty_bytes == 3 * BS
    finally:
        tracker.close(timeout=10)
    assert tracker.window.parked() == 1, "the FLUSH marker was dropped instead of parked"
    assert list(BitMap.deserialize((folder / "dirty.bitmap").read_bytes())) == [768, 769, 1280]
    assert {r for (r,) in SLOT.iter_unpack((folder / "activity.log").read_bytes()) if r != FREE} == set()
    assert ParkedMarkers(folder / "markers.parked").load() == [("FLUSH", None)]
    restarted = Tracker(VolumeSpec("disk0", 16 * MIB), clients, Topics("offline"), folder, image, options).start()
    try:
        assert restarted.window.parked() == 1, "the parked FLUSH marker did not survive the restart"
        assert len(restarted.dirty) == 3
    finally:
        restarted.close(timeout=10)
