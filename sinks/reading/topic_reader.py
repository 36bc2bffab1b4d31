"""Read a topic once, from a start to its current end, without a consumer group.

`read_messages` reads a whole small metadata topic (volumes, mirror status). `read_partitions`
reads only some partitions (a volume's, see key_partitions) of a topic of any size: it has no
overall time limit, only a stall limit (no message and no progress for STALL_S seconds). The end
is found by partition EOF events, which respects read_committed (the last stable offset).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from tidemark.core.kafka import KafkaClients
from tidemark.core.topic_partitions import topic_partitions
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from ..exceptions import SinkError

METADATA_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0
STALL_S = 60.0


def partitions_of(client: Consumer | Producer, topic: str) -> list[int]:
    return topic_partitions(client, topic, METADATA_TIMEOUT_S)


def read_messages(clients: KafkaClients, topic: str, key: str | None = None) -> Iterator[Message]:
    """Every message of `topic` (with that key, if given) present when the call starts."""
    consumer = clients.consumer(
        f"tidemark-reader-{uuid.uuid4()}", **{"enable.partition.eof": True}
    )
    wanted = key.encode() if key is not None else None
    try:
        parts = partitions_of(consumer, topic)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        open_parts = set(parts)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while open_parts:
            if time.monotonic() > deadline:
                raise SinkError(f"reading {topic} did not reach its end within {READ_TIMEOUT_S:.0f} s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    open_parts.discard(msg.partition())
                    continue
                raise SinkError(f"reading {topic}: {error}")
            if wanted is None or msg.key() == wanted:
                yield msg
    finally:
        consumer.close()


def read_records(
    clients: KafkaClients, topic: str, record_type: str, key: str | None = None
) -> Iterator[dict[str, Any]]:
    """Decoded records of one type; undecodable messages are skipped (the stages dead-letter them)."""
    codec = default_codec()
    for msg in read_messages(clients, topic, key):
        value = msg.value()
        if value is None:
            continue
        try:
            found, record = codec.decode(value)
        except DecodeError:
            continue
        if found == record_type:
            yield record


def position(msg: Message) -> tuple[int, int]:
    """(partition, offset) of a consumed message (never None for one without an error)."""
    partition, offset = msg.partition(), msg.offset()
    if partition is None or offset is None:
        raise SinkError(f"a message of {msg.topic()} without a partition or an offset")
    return partition, offset


def reader_consumer(clients: KafkaClients) -> Consumer:
    """A throwaway consumer (no commits) that reports partition EOF."""
    return clients.consumer(f"tidemark-reader-{uuid.uuid4()}", **{"enable.partition.eof": True})


def read_partitions(
    consumer: Consumer, topic: str, starts: Mapping[int, int], ends: Mapping[int, int] | None = None
) -> Iterator[Message]:
    """Messages of the partitions in `starts` (partition -> first offset, or OFFSET_BEGINNING),
    each up to its end: the partition EOF, or the offset in `ends` (excluded)."""
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
    open_parts = set(starts)
    last_seen = time.monotonic()
    try:
        while open_parts:
            msg = consumer.poll(0.5)
            if msg is None:
                if time.monotonic() - last_seen > STALL_S:
                    raise SinkError(
                        f"reading {topic} partitions {sorted(open_parts)} stalled: nothing for "
                        f"{STALL_S:.0f} s; is the broker up?"
                    )
                continue
            last_seen = time.monotonic()
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    open_parts.discard(msg.partition())
                    continue
                raise SinkError(f"reading {topic}[{msg.partition()}]: {error}")
            partition, offset = position(msg)
            if partition not in open_parts:
                continue
            end = None if ends is None else ends.get(partition)
            if end is not None and offset >= end:
                open_parts.discard(partition)
                continue
            yield msg
            if end is not None and offset + 1 >= end:
                open_parts.discard(partition)
    finally:
        consumer.unassign()
