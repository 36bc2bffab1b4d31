"""Find the last seq a volume has on the writes topic.

A (re)connecting tracker continues from there, so it never reuses a seq and leaves no gap for
writes the previous tracker (or producer) had published but not yet recorded as confirmed.

- `last_seq_from(checkpoint)`: forward from a checkpoint (`seq_checkpoint`: an offset holding a
  confirmed message of the volume, every seq before it at most the checkpoint's) to the end. It
  reads only what follows the checkpoint, however much the partition's other volumes wrote
  before it; for a settled checkpoint, only the message at its offset.
- `last_seq`: backwards from the end in growing windows, when there is no usable checkpoint.

Both read in batches and decode only the volume's own messages (the key is compared first).
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from tidemark.core.exceptions import KafkaError
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .seq_checkpoint import Checkpoint

BATCH = 2048
POLL_SECONDS = 0.5
# A tail read fetches big batches: the partition may hold much of other volumes' data to skip.
SCAN_CONSUMER_CONFIG = {"fetch.max.bytes": 128 << 20, "max.partition.fetch.bytes": 64 << 20}
# Reading a checkpoint and the one message a settled checkpoint names fetches little: with the
# scan's fetch sizes, that one message brought 64 MiB of the neighbours' data after it (a restart
# next to two million neighbour events took 2.5-7 s on a loaded machine instead of well under 1 s).
# A message larger than the fetch size still arrives whole (the broker returns the first batch).
POINT_CONSUMER_CONFIG = {"max.partition.fetch.bytes": 64 << 10, "queued.min.messages": 1}


def last_seq(consumer: Consumer, topic: str, partition: int, volume: str, timeout: float = 30.0) -> int:
    """The highest BlockWrite seq of `volume` in the partition, or -1 if it has none."""
    low, high = _watermarks(consumer, topic, partition, volume, timeout)
    window = 256
    end = high
    while end > low:
        start = max(low, end - window)
        best, _first = _scan(consumer, topic, partition, start, end, volume, timeout)
        if best is not None:
            return best
        end = start
        window *= 4
    return -1


def last_seq_from(
    consumer: Consumer, topic: str, partition: int, volume: str, checkpoint: Checkpoint, timeout: float = 30.0
) -> int | None:
    """The highest seq of `volume` given its checkpoint: a settled checkpoint's seq, else the
    checkpoint's seq or a higher BlockWrite after it. None when the checkpoint's offset holds no
    message of the volume (a stale checkpoint, the topic recreated: scan backwards instead)."""
    low, high = _watermarks(consumer, topic, partition, volume, timeout)
    if not low <= checkpoint.offset < high:
        return None
    end = checkpoint.offset + 1 if checkpoint.settled else high
    best, first = _scan(consumer, topic, partition, checkpoint.offset, end, volume, timeout)
    if first != checkpoint.offset:
        return None
    return checkpoint.seq if best is None else max(best, checkpoint.seq)


def _watermarks(consumer: Consumer, topic: str, partition: int, volume: str, timeout: float) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
    except KafkaException as exc:
        raise KafkaError(f"reading the tail of {topic}[{partition}] for volume {volume}: {exc}") from exc
    return int(low), int(high)


def _scan(
    consumer: Consumer, topic: str, partition: int, start: int, end: int, volume: str, timeout: float
) -> tuple[int | None, int | None]:
    """The highest seq of the volume's BlockWrites in offsets [start, end), and the offset of the
    volume's first message there (None when there is none)."""
    codec: Any = default_codec()
    key = volume.encode()
    consumer.assign([TopicPartition(topic, partition, start)])
    best: int | None = None
    first: int | None = None
    deadline = time.monotonic() + timeout
    position = start
    try:
        while position < end:
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"timed out after {timeout} s reading {topic}[{partition}] offsets {start}..{end} "
                    f"for the last seq of volume {volume} (at offset {position})"
                )
            batch = consumer.consume(BATCH, POLL_SECONDS)
            if not batch:  # control records (transaction markers) take offsets but are not returned
                position = max(position, consumer.position([TopicPartition(topic, partition)])[0].offset)
            for msg in batch:
                if msg.error():
                    raise KafkaError(f"reading {topic}[{partition}] for volume {volume}: {msg.error()}")
                offset = msg.offset() or 0
                position = offset + 1
                if offset >= end or msg.key() != key or msg.value() is None:
                    continue
                first = offset if first is None else first
                try:
                    record_type, record = codec.decode(msg.value())
                except DecodeError:
                    continue
                if record_type == "BlockWrite" and record["volume"] == volume:
                    best = record["seq"] if best is None else max(best, record["seq"])
    finally:
        consumer.unassign()
    return best, first
