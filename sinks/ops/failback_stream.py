"""What each side emitted after the failover point, read from the change-set topic.

Every ChangeSetSealed of the volume with an id above the failover point's change set carries the
bitmap of blocks it changed and the primary generation it was sealed under:
- an older generation than the failover's: the old primary changed those blocks after the point
  (its last sets before the fence);
- the failover's generation or a newer one: the promoted copy's tracker changed them
  (`failover --reverse` serves it under the new generation).
The last seal is where the applier resumes after failback. Only the partitions that can hold the
volume's key are read, to their end, and only seals are decoded (Extent bodies are skipped after
peeking their record type): memory is two roaring bitmaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING
from pyroaring import BitMap

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas.topic_records import Topic

from ..reading.key_partitions import key_partitions
from ..reading.topic_reader import partitions_of, position, read_partitions, reader_consumer
from ..reading.volume_records import volume_records
from .failback import StreamPosition

SEAL = "ChangeSetSealed"


@dataclass
class StreamChanges:
    """The blocks of the seals after a change set, split at a failover's generation."""

    before: BitMap = field(default_factory=BitMap)
    """sealed under an older generation: changed on the old primary"""
    since: BitMap = field(default_factory=BitMap)
    """sealed under the failover's generation or a newer one: changed on the promoted copy"""
    last: StreamPosition | None = None
    """right after the last seal: where the applier resumes"""

    @property
    def blocks(self) -> BitMap:
        return self.before | self.since


def changed_after(
    clients: KafkaClients, topics: Topics, volume: str, after_changeset: int, generation: int = 0
) -> StreamChanges:
    """The seal bitmaps after `after_changeset`, split at `generation`, and the position after the last."""
    changes = StreamChanges()
    consumer = reader_consumer(clients)
    try:
        partitions = key_partitions(volume, len(partitions_of(consumer, topics.changesets)))
        messages = read_partitions(consumer, topics.changesets, dict.fromkeys(partitions, OFFSET_BEGINNING))
        for msg, record in volume_records(messages, Topic.CHANGESETS, volume, SEAL):
            if record["volume"] != volume or record["changeset_id"] <= after_changeset:
                continue
            side = changes.since if record["generation"] >= generation else changes.before
            side |= BitMap.deserialize(record["bitmap"])
            last = changes.last
            if last is None or record["changeset_id"] >= last.changeset_id:
                partition, offset = position(msg)
                changes.last = StreamPosition(
                    partition, offset + 1, record["changeset_id"], record["seq_last"], record["sealed_at"]
                )
    finally:
        consumer.close()
    return changes
