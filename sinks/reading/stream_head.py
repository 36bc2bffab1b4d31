"""The newest change set of a volume still in the change-set topic, read backwards in windows.

A resync records the mirror as caught up to this set: the applier then resumes right after it.
Reading backwards costs the tail of the partition, not the whole retained topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .key_partitions import key_partitions
from .topic_reader import partitions_of, position

STALL_S = 10.0


@dataclass(frozen=True)
class StreamHead:
    changeset_id: int
    seq_last: int
    sealed_at: int
    rp_id: int | None
    partition: int
    next_offset: int  # right after the seal: where an applier resumes
    end: int  # the partition's end when it was read: every ResyncRequest before it predates the resync
    generation: int = 0  # the primary generation the set was sealed under


def newest_changeset(clients: KafkaClients, topics: Topics, volume: str) -> StreamHead | None:
    """The last ChangeSetSealed of `volume` in the topic, None when the topic holds none."""
    topic = topics.changesets
    consumer = kafka_io.reader(clients, "resync")
    try:
        heads = [
            _newest_in(consumer, topic, partition, volume)
            for partition in key_partitions(volume, len(partitions_of(consumer, topic)))
        ]
    finally:
        consumer.close()
    found = [head for head in heads if head is not None]
    return max(found, key=lambda head: head.changeset_id) if found else None


def _newest_in(consumer: Consumer, topic: str, partition: int, volume: str) -> StreamHead | None:
    """The volume's last seal in one partition: the last one of the newest window holding any."""
    low, high = kafka_io.watermarks(consumer, topic, partition)
    key = volume.encode()
    window: list[StreamHead] = []
    messages = kafka_io.read_backwards(
        consumer, topic, partition, lambda: bool(window), bounds=(low, high), stall=STALL_S
    )
    for msg in messages:
        if msg.key() == key:
            head = _seal_of(msg.value() or b"", volume, *position(msg), high)
            if head is not None:
                window.append(head)
    return window[-1] if window else None


def _seal_of(value: bytes, volume: str, partition: int, offset: int, end: int) -> StreamHead | None:
    try:
        record_type, record = default_codec().decode(value)
    except DecodeError:
        return None
    if record_type != "ChangeSetSealed" or record["volume"] != volume:
        return None
    return StreamHead(
        record["changeset_id"],
        record["seq_last"],
        record["sealed_at"],
        record.get("rp_id"),
        partition,
        offset + 1,
        end,
        int(record.get("generation") or 0),
    )
