"""Throwaway consumers (no group commits, read_committed) that read topics once and stop.

`read_all` reads a small metadata topic from its beginning to its end; `read_tail` reads a big
journal (the writes topic) backwards in growing windows until it has seen what it looks for.
The end is the partition EOF, which under read_committed is the last stable offset.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from tidemark.core.kafka import KafkaClients
from tidemark.core.topic_partitions import topic_partitions

from .exceptions import StatusError

TIMEOUT_S = 30.0
FIRST_WINDOW = 512


def _consumer(clients: KafkaClients) -> Consumer:
    return clients.consumer(f"tidemark-status-{uuid.uuid4()}", **{"enable.partition.eof": True})


def partitions(consumer: Consumer, topic: str) -> list[int]:
    return topic_partitions(consumer, topic, TIMEOUT_S)


def _drain(
    consumer: Consumer, topic: str, wanted: set[int], stop_at: dict[int, int] | None = None
) -> Iterator[Message]:
    """Messages of the assigned partitions until each reaches EOF (or its `stop_at` offset).

    No overall time limit (a topic may be large): only a stall limit of TIMEOUT_S seconds."""
    last_seen = time.monotonic()
    while wanted:
        msg = consumer.poll(0.5)
        if msg is None:
            if time.monotonic() - last_seen > TIMEOUT_S:
                raise StatusError(f"reading {topic} stalled: nothing for {TIMEOUT_S:.0f} s before its end")
            continue
        last_seen = time.monotonic()
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                wanted.discard(msg.partition())
                continue
            raise StatusError(f"reading {topic}: {error}")
        partition, offset = msg.partition(), msg.offset()
        assert partition is not None and offset is not None  # only error events lack them
        if stop_at is not None and offset >= stop_at.get(partition, 0):
            wanted.discard(partition)
            continue
        yield msg
        if stop_at is not None and offset + 1 >= stop_at.get(partition, 0):
            wanted.discard(partition)


def read_all(clients: KafkaClients, topic: str) -> Iterator[Message]:
    """Every message of `topic` present when the call starts."""
    consumer = _consumer(clients)
    try:
        parts = partitions(consumer, topic)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        yield from _drain(consumer, topic, set(parts))
    finally:
        consumer.close()


def read_tail(
    clients: KafkaClients, topic: str, partition: int, satisfied: Callable[[], bool]
) -> Iterator[Message]:
    """Messages of one partition, newest windows first (each window in offset order), until
    `satisfied()` after a window, or the start of the partition."""
    consumer = _consumer(clients)
    try:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S)
        except KafkaException as exc:
            raise StatusError(f"cannot read the offsets of {topic}[{partition}]: {exc}") from exc
        end, window = high, FIRST_WINDOW
        while end > low:
            start = max(low, end - window)
            consumer.assign([TopicPartition(topic, partition, start)])
            yield from _drain(consumer, topic, {partition}, {partition: end})
            consumer.unassign()
            if satisfied():
                return
            end, window = start, window * 4
    finally:
        consumer.close()
