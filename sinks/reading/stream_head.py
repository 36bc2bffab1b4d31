"""The newest change set of a volume still in the change-set topic, read backwards in windows.

A resync records the mirror as caught up to this set: the applier then resumes right after it.
Reading backwards costs the tail of the partition, not the whole retained topic.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from ..exceptions import SinkError
from .key_partitions import key_partitions
from .topic_reader import METADATA_TIMEOUT_S, partitions_of

FIRST_WINDOW = 256
POLL_S = 0.5
IDLE_POLLS = 20


@dataclass(frozen=True)
class StreamHead:
    changeset_id: int
    seq_last: int
    sealed_at: int
    rp_id: int | None
    partition: int
    next_offset: int  # right after the seal: where an applier resumes
    end: int  # the partition's end when it was read: every ResyncRequest before it predates the resync


def newest_changeset(clients: KafkaClients, topics: Topics, volume: str) -> StreamHead | None:
    """The last ChangeSetSealed of `volume` in the topic, None when the topic holds none."""
    topic = topics.changesets
    consumer = clients.consumer(f"tidemark-resync-{uuid.uuid4()}")
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
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S)
    end, window = high, FIRST_WINDOW
    while end > low:
        start = max(low, end - window)
        found = _last_seal(consumer, topic, partition, start, end, volume)
        if found is not None:
            return dataclasses.replace(found, end=high)
        end, window = start, window * 4
    return None


def _last_seal(consumer: Consumer, topic: str, partition: int, start: int, end: int, volume: str) -> StreamHead | None:
    consumer.assign([TopicPartition(topic, partition, start)])
    key = volume.encode()
    found: StreamHead | None = None
    idle = 0
    while idle < IDLE_POLLS:
        msg = consumer.poll(POLL_S)
        if msg is None:
            position = consumer.position([TopicPartition(topic, partition)])[0].offset
            if position >= end:
                break
            idle += 1
            continue
        offset = msg.offset()
        if msg.error() is not None or offset is None:
            raise SinkError(f"reading {topic}[{partition}]: {msg.error()}")
        idle = 0
        if offset >= end:
            break
        if msg.key() == key:
            found = _seal_of(msg.value() or b"", volume, partition, offset) or found
        if offset >= end - 1:
            break
    else:
        raise SinkError(f"reading {topic}[{partition}] from offset {start} stalled before offset {end}")
    return found


def _seal_of(value: bytes, volume: str, partition: int, offset: int) -> StreamHead | None:
    try:
        record_type, record = default_codec().decode(value)
    except DecodeError:
        return None
    if record_type != "ChangeSetSealed" or record["volume"] != volume:
        return None
    return StreamHead(
        record["changeset_id"], record["seq_last"], record["sealed_at"], record.get("rp_id"), partition, offset + 1,
        offset + 1,
    )
