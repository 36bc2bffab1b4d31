"""Read a whole topic once, from the beginning to its current end, without a consumer group.

Used for small metadata topics (volumes, recovery points, mirror status). The end is found by
partition EOF events, which also respects read_committed (the end is the last stable offset).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition

from tidemark.core.kafka import KafkaClients
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .exceptions import SinkError

METADATA_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0


def partitions_of(consumer: object, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)  # type: ignore[attr-defined]
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise SinkError(
            f"topic {topic} does not exist; create the topics with `tidemark topics create` "
            "(and check TIDEMARK_TOPIC_PREFIX)"
        )
    return sorted(found.partitions)


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
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    open_parts.discard(msg.partition())
                    continue
                raise SinkError(f"reading {topic}: {msg.error()}")
            if wanted is None or msg.key() == wanted:
                yield msg
    finally:
        consumer.close()


def read_records(
    clients: KafkaClients, topic: str, record_type: str, key: str | None = None
) -> Iterator[dict]:
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
