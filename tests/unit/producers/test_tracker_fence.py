"""A fenced tracker without Kafka (nothing listens on its bootstrap address): writes, zeroes and
trims are refused with the reason, markers are not queued, and the NBD export turns read-only
(the server then answers writes with EPERM) while reads still work."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec
from tidemark.producers.nbd.image import RawImage
from tidemark.producers.nbd.tracking_export import TrackingExport
from tidemark.producers.parked_markers import ParkedMarkers
from tidemark.producers.primary_watch import Primary
from tidemark.producers.tracker import (
    AckMode,
    Tracker,
    TrackerFencedError,
    TrackerOptions,
)

MIB = 1 << 20
BS = 4096


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_fenced_tracker_refuses_writes_and_its_export_turns_read_only(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    clients = KafkaClients(settings, KafkaSettings(bootstrap=f"127.0.0.1:{_closed_port()}"))
    image = tmp_path / "disk.img"
    image.write_bytes(b"\x07" * BS + bytes(4 * MIB - BS))
    spec = VolumeSpec("fence0", 4 * MIB)
    options = TrackerOptions(ack=AckMode.LOCAL, region_bytes=MIB, reconnect_interval=60.0)
    tracker = Tracker(spec, clients, Topics("offline"), tmp_path / "tracker", image, options, Primary(2, "dc1")).start()
    export = TrackingExport(tracker, RawImage(image, spec.size, spec.name))
    try:
        assert tracker.primary == Primary(2, "dc1") and tracker.fenced is None and not export.read_only
        assert tracker.submit_write(0, bytes(BS)).done()
        tracker.fence("volume fence0: the registry moved the primary to generation 3")
        assert export.read_only
        for submit in (
            lambda: tracker.submit_write(BS, bytes(BS)),
            lambda: tracker.submit_zero(BS, BS),
            lambda: tracker.submit_trim(BS, BS),
        ):
            with pytest.raises(TrackerFencedError, match="generation 3"):
                submit()
        assert tracker.submit_marker("FLUSH").done()
        assert asyncio.run(export.read(0, BS)) == b"\x07" * BS
        asyncio.run(export.flush())
    finally:
        asyncio.run(export.close())
        tracker.close(timeout=10)
    assert ParkedMarkers(tmp_path / "tracker" / "markers.parked").load() == [], "a fenced tracker queued a marker"
