"""A fenced tracker without Kafka (nothing listens on its bootstrap address): writes, zeroes and
trims are refused with the reason, markers are not queued, and the NBD export turns read-only
(the server then answers writes with EPERM) while reads still work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tidemark.core.kafka import KafkaClients
from tidemark.core.nbd import protocol as p
from tidemark.core.nbd.inline_writes import MAX_RUN, serve_writes
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

from .unreachable import closed_port

MIB = 1 << 20
BS = 4096


def test_a_fenced_tracker_refuses_writes_and_its_export_turns_read_only(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    clients = KafkaClients(settings, KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}"))
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


@pytest.mark.skipif(serve_writes is None, reason="the C extension was not built (no compiler)")
def test_a_fence_during_the_intent_of_a_run_of_c_served_writes_keeps_the_run_off_the_image(tmp_path: Path) -> None:
    """The registry watch can fence while a run's intent runs: the check comes after it, so no
    write of the run reaches the image, and the Python path answers each (EPERM)."""
    assert serve_writes is not None
    settings = Settings(state_dir=tmp_path / "state")
    clients = KafkaClients(settings, KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}"))
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4 * MIB))
    spec = VolumeSpec("fence1", 4 * MIB)
    options = TrackerOptions(ack=AckMode.LOCAL, region_bytes=MIB, reconnect_interval=60.0)
    tracker = Tracker(spec, clients, Topics("offline"), tmp_path / "tracker", image, options, Primary(2, "dc1")).start()
    export = TrackingExport(tracker, RawImage(image, spec.size, spec.name))
    try:
        hooks = export.inline_write_hooks()
        assert hooks is not None

        def fence_then_intent(ranges: list[tuple[int, int]]) -> object:
            tracker.fence("volume fence1: the registry moved the primary to generation 3")
            return hooks.intent(ranges)

        buffer = bytearray()
        for handle in (1, 2):
            buffer += p.REQUEST.pack(p.REQUEST_MAGIC, 0, p.CMD_WRITE, handle, handle * BS, BS) + b"\x09" * BS
        end, replies = serve_writes(
            buffer, 0, hooks.fd, BS, spec.size, hooks.max_length, MAX_RUN, fence_then_intent, hooks.submit
        )
        assert (end, replies) == (0, b""), "the run went past the fence"
        assert export.inline_write_hooks() is None
        with pytest.raises(TrackerFencedError):
            hooks.submit([(0, b"\x06" * BS)])
    finally:
        asyncio.run(export.close())
        tracker.close(timeout=10)
    assert image.read_bytes()[BS : 3 * BS] == bytes(2 * BS), "a write of the run reached the image"
