"""What the old primary emitted after the failover point, read from the change-set topic.

Every ChangeSetSealed of the volume with an id above the failover point's change set carries the
bitmap of blocks it changed: those blocks changed on the old primary after the failover point.
The last of them is where the applier resumes after failback. Only the partitions that can hold
the volume's key are read, to their end, and only seals are decoded (Extent bodies are skipped
after peeking their record type): memory is one roaring bitmap.
"""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING
from pyroaring import BitMap

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from ..reading.key_partitions import key_partitions
from ..reading.topic_reader import partitions_of, position, read_partitions, reader_consumer
from .failback import StreamPosition

SEAL = "ChangeSetSealed"


def changed_after(
    clients: KafkaClients, topics: Topics, volume: str, after_changeset: int
) -> tuple[BitMap, StreamPosition | None]:
    """Union of the seal bitmaps after `after_changeset`, and the position after the last seal."""
    codec = default_codec()
    key = volume.encode()
    changed = BitMap()
    last: StreamPosition | None = None
    consumer = reader_consumer(clients)
    try:
        partitions = key_partitions(volume, len(partitions_of(consumer, topics.changesets)))
        for msg in read_partitions(consumer, topics.changesets, dict.fromkeys(partitions, OFFSET_BEGINNING)):
            value = msg.value()
            if msg.key() != key or not value:
                continue
            try:
                if codec.record_type_of(value) != SEAL:
                    continue
                _, record = codec.decode(value)
            except DecodeError:
                continue
            if record["volume"] != volume or record["changeset_id"] <= after_changeset:
                continue
            changed |= BitMap.deserialize(record["bitmap"])
            if last is None or record["changeset_id"] >= last.changeset_id:
                partition, offset = position(msg)
                last = StreamPosition(
                    partition, offset + 1, record["changeset_id"], record["seq_last"], record["sealed_at"]
                )
    finally:
        consumer.close()
    return changed, last
