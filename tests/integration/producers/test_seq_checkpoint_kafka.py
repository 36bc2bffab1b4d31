"""The tracker's seq checkpoints through the real broker (issue 14 item 6).

- A clean stop leaves a settled checkpoint naming the last seq: what lets a restart skip the
  neighbours' data (`test_tracker_reconnect.py` times that next to a busy neighbour).
- The tail after a checkpoint: settled, unsettled (later seqs count) and stale ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tidemark.core.partitioning import volume_partition
from tidemark.core.volumes import VolumeSpec
from tidemark.producers.blockwrite_encoder import BlockWriteEncoder
from tidemark.producers.seq_checkpoint import Checkpoint, checkpoint_topic, read_checkpoint
from tidemark.producers.seq_tail import SCAN_CONSUMER_CONFIG, last_seq, last_seq_from
from tidemark.producers.tracker import Tracker, TrackerOptions
from tidemark.schemas.codec import default_codec

from ...conftest import TidemarkTest
from .nbd_harness import wait_until

pytestmark = [pytest.mark.integration]

MIB = 1 << 20
BS = 4096


def _checkpoint(tm: TidemarkTest, volume: str, partition: int) -> Checkpoint | None:
    consumer = tm.clients.consumer(tm.group("checkpoint"))
    try:
        return read_checkpoint(consumer, checkpoint_topic(tm.topics), volume, partition)
    finally:
        consumer.close()


def test_a_clean_stop_leaves_a_settled_checkpoint_of_the_last_seq(tm: TidemarkTest, tmp_path: Path) -> None:
    spec = VolumeSpec("quiet2", 16 * MIB)
    with (tmp_path / "disk.img").open("wb") as handle:
        handle.truncate(spec.size)
    partition = volume_partition(spec.name, tm.settings.partitions)
    tracker = Tracker(spec, tm.clients, tm.topics, tmp_path / "tracker", tmp_path / "disk.img",
                      TrackerOptions(region_bytes=MIB))  # fmt: skip
    with tracker.start():
        for index in range(10):
            tracker.intent(index * BS, BS)
            tracker.submit_write(index * BS, bytes([index + 1]) * BS)
        wait_until(lambda: tracker.stats.last_seq == 9, 90, "the ten writes shipped")
        tracker.wait_shipped(30)
        wait_until(
            lambda: (found := _checkpoint(tm, spec.name, partition)) is not None and found.seq == 9,
            20, "the checkpoint of seq 9",
        )  # fmt: skip
    stopped = _checkpoint(tm, spec.name, partition)
    assert stopped is not None and stopped.settled and stopped.seq == 9, f"a clean stop left {stopped}"


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
        assert last_seq_from(consumer, writes, partition, "quiet1", settled) == 2, "a settled one reads no further"
        stale = Checkpoint(partition, offsets[2] + 1, 2)
        assert last_seq_from(consumer, writes, partition, "quiet1", stale) is None
        assert last_seq_from(consumer, writes, partition, "quiet1", Checkpoint(partition, 10**9, 2)) is None
        assert last_seq(consumer, writes, partition, "quiet1") == 4
    finally:
        consumer.close()
