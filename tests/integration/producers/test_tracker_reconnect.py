"""Reconnect without reading the neighbours (issue 14 item 6), through the real broker.

A tracker publishes ten writes and stops cleanly, then a busy neighbour volume on the same writes
partition appends NEIGHBOUR_EVENTS small events (a 512-byte-block volume zeroing block after
block). The restarted tracker must find its last seq within 5 s and continue the seqs without a
gap or a reuse.

What makes this a test of the mechanism: a scan of the partition costs per message, so it is the
neighbour's event count, not its bytes, that the scan-back code paid for (200 MiB of 512-byte
writes, 409,600 events, took it 3.8 s: under the bound). Next to two million events it took
24 s on a loaded machine, and the checkpoint path 1.6 s: that path reads the checkpoint topic and
the one message its settled checkpoint names, whatever the neighbour wrote. This file imports only what the
tracker had before the checkpoints, so the same test runs on that code (and fails there); the
checkpoints themselves are tested in `test_seq_checkpoint_kafka.py`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tidemark.core import kafka_io
from tidemark.core.partitioning import volume_partition
from tidemark.core.volumes import VolumeSpec
from tidemark.producers.blockwrite_encoder import BlockWriteEncoder
from tidemark.producers.tracker import Tracker, TrackerOptions
from tidemark.schemas.codec import default_codec

from ...conftest import TidemarkTest
from .nbd_harness import wait_until

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
BS = 4096
NEIGHBOUR_EVENTS = 2_000_000
NEIGHBOUR_BLOCK = 512
RECONNECT_LIMIT_S = 5.0
# Many small messages per request: the flood is produced in seconds, not minutes.
FLOOD_PRODUCER = {
    "linger.ms": 50,
    "batch.num.messages": 100_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 256 * 1024,
}


def neighbour_of(volume: str, partitions: int) -> str:
    """A volume name that lands on the same writes partition as `volume`."""
    target = volume_partition(volume, partitions)
    return next(f"busy{i}" for i in range(1000) if volume_partition(f"busy{i}", partitions) == target)


def flood(tm: TidemarkTest, neighbour: str, partition: int) -> None:
    """NEIGHBOUR_EVENTS of the neighbour's events on the partition, confirmed.

    One ZERO event repeated: a scan pays per message and skips other volumes' keys before
    decoding, so the events' seqs and contents do not change its cost (and encoding two million
    distinct events would take longer than the test may).
    """
    value = BlockWriteEncoder(default_codec(), neighbour).encode(
        epoch=1, seq=0, timestamp=0, offset=0, length=NEIGHBOUR_BLOCK, op="ZERO", compression="NONE",
        data=b"", checksum=bytes(8),
    )  # fmt: skip
    key, topic = neighbour.encode(), tm.topics.writes
    producer = tm.clients.producer(**FLOOD_PRODUCER)
    for _ in range(NEIGHBOUR_EVENTS):
        kafka_io.produce(producer, topic, value, key=key, partition=partition)
    assert producer.flush(120) == 0, "the neighbour's flood was not confirmed"


def _tracker(tm: TidemarkTest, spec: VolumeSpec, tmp_path: Path) -> Tracker:
    options = TrackerOptions(region_bytes=MIB)
    return Tracker(spec, tm.clients, tm.topics, tmp_path / "tracker", tmp_path / "disk.img", options)


def test_a_restarted_tracker_finds_its_last_seq_within_5s_next_to_a_busy_neighbour(
    tm: TidemarkTest, tmp_path: Path
) -> None:
    spec = VolumeSpec("quiet0", 16 * MIB)
    with (tmp_path / "disk.img").open("wb") as handle:
        handle.truncate(spec.size)
    partition = volume_partition(spec.name, tm.settings.partitions)
    with _tracker(tm, spec, tmp_path).start() as tracker:
        for index in range(10):
            tracker.intent(index * BS, BS)
            tracker.submit_write(index * BS, bytes([index + 1]) * BS)
        # A loaded machine may need several connection attempts: wait for the ten writes on Kafka.
        wait_until(lambda: tracker.stats.last_seq == 9, 90, "the ten writes shipped")
        tracker.wait_shipped(30)

    flood(tm, neighbour_of(spec.name, tm.settings.partitions), partition)

    began = time.monotonic()
    with _tracker(tm, spec, tmp_path).start() as restarted:
        took = time.monotonic() - began
        assert took <= RECONNECT_LIMIT_S, (
            f"finding the last seq took {took:.1f} s next to {NEIGHBOUR_EVENTS} events of a neighbour"
        )
        restarted.intent(0, BS)
        restarted.submit_write(0, bytes([99]) * BS)
        restarted.wait_shipped(30)
        assert restarted.stats.last_seq == 10, "the seqs did not continue after the last one (gap or reuse)"
