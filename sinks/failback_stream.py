"""What the old primary emitted after the failover point, read from the change-set topic.

Every ChangeSetSealed of the volume with an id above the failover point's change set carries the
bitmap of blocks it changed: those blocks changed on the old primary after the failover point.
The last of them is where the applier resumes after failback.
"""

from __future__ import annotations

from pyroaring import BitMap

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .failback import StreamPosition
from .topic_reader import read_messages


def changed_after(
    clients: KafkaClients, topics: Topics, volume: str, after_changeset: int
) -> tuple[BitMap, StreamPosition | None]:
    """Union of the seal bitmaps after `after_changeset`, and the position after the last seal."""
    codec = default_codec()
    changed = BitMap()
    last: StreamPosition | None = None
    for msg in read_messages(clients, topics.changesets, key=volume):
        try:
            kind, record = codec.decode(msg.value() or b"", expect=None)
        except DecodeError:
            continue
        if kind != "ChangeSetSealed" or record["changeset_id"] <= after_changeset:
            continue
        changed |= BitMap.deserialize(record["bitmap"])
        if last is None or record["changeset_id"] >= last.changeset_id:
            last = StreamPosition(
                msg.partition(), msg.offset() + 1, record["changeset_id"], record["seq_last"], record["sealed_at"]
            )
    return changed, last
