"""The volume's read profile (the first blocks its tracker saw read after a client connected).

Read from the compacted `<prefix>.read-profiles` topic: the last `ReadProfile` event keyed by the
volume. A restore copies these blocks first, so a machine started from the restore finds its boot
blocks in the destination early. Best effort: no profile, another block size, or Kafka out of
reach gives None and the restore copies in block order.
"""

from __future__ import annotations

import logging

from pyroaring import BitMap

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec
from tidemark.schemas.topic_records import Topic, decode_on

from ..reading.topic_reader import read_messages

log = logging.getLogger(__name__)


def latest_profile(clients: KafkaClients, topics: Topics, volume: str, block_size: int) -> BitMap | None:
    codec = default_codec()
    found: BitMap | None = None
    try:
        for message in read_messages(clients, topics.read_profiles, volume):
            value = message.value()
            if value is None:
                found = None
                continue
            _kind, record = decode_on(Topic.READ_PROFILES, value, codec)
            found = BitMap.deserialize(record["blocks"]) if record["block_size"] == block_size else None
    except Exception as exc:  # noqa: BLE001  (no profile only makes the restore copy in block order)
        log.warning("volume %s: no read profile in %s (%s); copying in block order", volume, topics.read_profiles, exc)
        return None
    return found
