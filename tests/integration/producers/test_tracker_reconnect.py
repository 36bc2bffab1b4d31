"""Reconnect without reading the neighbours (issue 14 item 6), through the real broker.

- A tracker publishes a few writes (its checkpoint follows its deliveries), stops cleanly (a
  settled checkpoint), then a busy neighbour volume on the same writes partition appends 200 MiB
  in 512-byte events. The restarted tracker finds its last seq within 5 s (it reads the one
  checkpointed message, not back through the neighbour's data) and continues the seqs without a
  gap or a reuse.
- The tail after a checkpoint: settled, unsettled (later seqs count) and stale ones.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tidemark.core.partitioning import volume_partition
from tidemark.core.volumes import VolumeSpec
from tidemark.producers.blockwrite_encoder import BlockWriteEncoder
from tidemark.producers.seq_checkpoint import (
    Checkpoint,
    checkpoint_topic,
    read_checkpoint,
)
from tidemark.producers.seq_tail import SCAN_CONSUMER_CONFIG, last_seq, last_seq_from
from tidemark.producers.tracker import Tracker, TrackerOptions
from tidemark.schemas.codec import default_codec

from ...conftest import TidemarkTest
from .nbd_harness import wait_until

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
BS = 4096
NEIGHBOUR_BYTES = 200 * MIB
NEIGHBOUR_EVENT_BYTES = 512  # a 512-byte-block neighbour: many small events, the costly case
RECONNECT_LIMIT_S = 5.0


def _neighbour_of(volume: str, partitions: int) -> str:
    """A volume name that lands on the same writes partition as `volume`."""
    target = volume_partition(volume, partitions)
    return next(f"busy{i}" for i in range(1000) if volume_partition(f"busy{i}", partitions) == target)


def _flood(tm: TidemarkTest, neighbour: str, partition: int) -> None:
    """NEIGHBOUR_BYTES of the neighbour's BlockWrites on the partition, confirmed."""
    encoder = BlockWriteEncoder(default_codec(), neighbour)
    data = os.urandom(NEIGHBOUR_EVENT_BYTES)
    producer = tm.clients.producer(**{"linger.ms": 20, "queue.buffering.max.kbytes": 256 * 1024})
    for seq in range(NEIGHBOUR_BYTES // NEIGHBOUR_EVENT_BYTES):
        value = encoder.encode(
            epoch=1, seq=seq, timestamp=0, offset=seq * NEIGHBOUR_EVENT_BYTES % (64 * MIB),
            length=NEIGHBOUR_EVENT_BYTES, op="WRITE", compression="NONE", data=data, checksum=bytes(8),
        )  # fmt: skip
        while True:
            try:
                producer.produce(tm.topics.writes, key=neighbour.encode(), value=value, partition=partition)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(120) == 0


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
        consumer = tm.clients.consumer(tm.group("checkpoint"))
        try:
            wait_until(
                lambda: (found := read_checkpoint(consumer, checkpoint_topic(tm.topics), spec.name, partition))
                is not None and found.seq == 9,
                20, "the checkpoint of seq 9",
            )  # fmt: skip
        finally:
            consumer.close()
    consumer = tm.clients.consumer(tm.group("checkpoint"))
    try:
        stopped = read_checkpoint(consumer, checkpoint_topic(tm.topics), spec.name, partition)
    finally:
        consumer.close()
    assert stopped is not None and stopped.settled and stopped.seq == 9, f"a clean stop left {stopped}"

    _flood(tm, _neighbour_of(spec.name, tm.settings.partitions), partition)

    began = time.monotonic()
    with _tracker(tm, spec, tmp_path).start() as restarted:
        took = time.monotonic() - began
        assert took <= RECONNECT_LIMIT_S, f"finding the last seq took {took:.1f} s next to 200 MiB of a neighbour"
        restarted.intent(0, BS)
        restarted.submit_write(0, bytes([99]) * BS)
        restarted.wait_shipped(30)
        assert restarted.stats.last_seq == 10, "the seqs did not continue after the last one (gap or reuse)"


def _produce(tm: TidemarkTest, partition: int, key: str, value: bytes) -> int:
    offsets: list[int] = []
    producer = tm.clients.producer()
    producer.produce(tm.topics.writes, key=key.encode(), value=value, partition=partition,
                     on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset() or 0))  # fmt: skip
    assert producer.flush(30) == 0 and offsets[0] >= 0
    return offsets[0]


def test_the_tail_after_a_checkpoint_settled_unsettled_or_stale(tm: TidemarkTest) -> None:
    """Unsettled: the highest seq after the checkpoint counts; settled: its seq, without reading
    on; a checkpoint whose offset holds another volume's message is refused (scan backwards)."""
    partition = 0
    encoder = BlockWriteEncoder(default_codec(), "quiet1")
    offsets = []
    for seq in range(5):
        value = encoder.encode(
            epoch=1, seq=seq, timestamp=0, offset=0, length=BS, op="WRITE", compression="NONE",
            data=bytes(BS), checksum=bytes(8),
        )  # fmt: skip
        offsets.append(_produce(tm, partition, "quiet1", value))
        _produce(tm, partition, "other", b"neighbour data")
    consumer = tm.clients.consumer(tm.group("tail"), **SCAN_CONSUMER_CONFIG)
    try:
        writes = tm.topics.writes
        assert last_seq_from(consumer, writes, partition, "quiet1", Checkpoint(partition, offsets[1], 1)) == 4
        assert last_seq_from(consumer, writes, partition, "quiet1", Checkpoint(partition, offsets[4], 4)) == 4
        settled = Checkpoint(partition, offsets[2], 2, settled=True)
        found = last_seq_from(consumer, writes, partition, "quiet1", settled)
        assert found == 2, "a settled checkpoint reads no further"
        stale = Checkpoint(partition, offsets[2] + 1, 2)
        assert last_seq_from(consumer, writes, partition, "quiet1", stale) is None
        assert last_seq_from(consumer, writes, partition, "quiet1", Checkpoint(partition, 10**9, 2)) is None
        assert last_seq(consumer, writes, partition, "quiet1") == 4
    finally:
        consumer.close()
