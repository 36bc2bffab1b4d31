"""A store of the analytics engine kept in memory and logged to a compacted topic of its own.

The journal-derived stores (`volumes`, `windows`) are written while the journal reader (see
journal.py) handles the writes topic, outside faust's stream iteration, where faust's RocksDB
tables cannot be written. Each set is produced to `<app id>-<name>-changelog` in the layout
faust uses for a table's changelog, which `history.read_changelog` reads back at startup:

    key    JSON of the store key (a volume name)
    value  JSON of the value; a delete is a tombstone (no value)
    partition  `volume_partition(key, partitions)`: the writes partition of the volume

Delivery is asynchronous; the journal reader flushes the producer before it commits the journal
offsets, so every committed offset is covered by the state logged before it (at-least-once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from typing import Any

from confluent_kafka import Producer

from tidemark.core.kafka import KafkaClients
from tidemark.core.partitioning import volume_partition
from tidemark.core.settings import Settings
from tidemark.core.topic_admin import TopicSpec, cluster_replication, create_topics

COMPACTED = {"cleanup.policy": "compact"}


def changelog_topic(app_id: str, name: str) -> str:
    """The topic of store `name` (faust's naming of a table changelog, kept for old state)."""
    return f"{app_id}-{name}-changelog"


def ensure_state_topic(clients: KafkaClients, settings: Settings, topic: str, partitions: int) -> None:
    """Create the compacted topic of a store when missing (one partition per writes partition)."""
    replication = cluster_replication(clients, settings)
    config = COMPACTED | {"max.message.bytes": str(settings.message_max_bytes)}
    create_topics(clients, [TopicSpec(topic, partitions, replication.factor, config)])


class TopicStore(MutableMapping[str, Any]):
    """A dict whose every change is also produced to `topic` (see the module docstring)."""

    def __init__(self, producer: Producer, topic: str, partitions: int, content: dict[str, Any]) -> None:
        self._producer = producer
        self._topic = topic
        self._partitions = partitions
        self._data = dict(content)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._produce(key, json.dumps(value, separators=(",", ":")).encode())

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._produce(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def _produce(self, key: str, value: bytes | None) -> None:
        partition = volume_partition(key, self._partitions)
        self._producer.produce(self._topic, key=json.dumps(key).encode(), value=value, partition=partition)
        self._producer.poll(0)
