"""Find the last seq a volume has on the writes topic, reading its partition backwards in windows.

A restarted tracker continues from there, so it never reuses a seq and leaves no gap for writes
the previous tracker had published but not yet recorded as confirmed.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from tidemark.core.exceptions import KafkaError
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError


def last_seq(consumer: Consumer, topic: str, partition: int, volume: str, timeout: float = 30.0) -> int:
    """The highest BlockWrite seq of `volume` in the partition, or -1 if it has none."""
    codec = default_codec()
    key = volume.encode()
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
    except KafkaException as exc:
        raise KafkaError(f"reading the tail of {topic}[{partition}] for volume {volume}: {exc}") from exc
    window = 256
    end = high
    while end > low:
        start = max(low, end - window)
        best = _scan(consumer, topic, partition, start, end, key, codec, timeout)
        if best is not None:
            return best
        end = start
        window *= 4
    return -1


def _scan(
    consumer: Consumer,
    topic: str,
    partition: int,
    start: int,
    end: int,
    key: bytes,
    codec: object,
    timeout: float,
) -> int | None:
    consumer.assign([TopicPartition(topic, partition, start)])
    best: int | None = None
    deadline = time.monotonic() + timeout
    position = start
    while position < end:
        if time.monotonic() > deadline:
            raise KafkaError(f"timed out reading {topic}[{partition}] offsets {start}..{end}")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaError(f"reading {topic}[{partition}]: {msg.error()}")
        position = msg.offset() + 1
        if msg.key() != key or msg.value() is None:
            continue
        try:
            record_type, record = codec.decode(msg.value())  # type: ignore[attr-defined]
        except DecodeError:
            continue
        if record_type == "BlockWrite" and record["volume"] == key.decode():
            best = record["seq"] if best is None else max(best, record["seq"])
    consumer.unassign()
    return best
