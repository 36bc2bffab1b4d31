"""Publish StreamModel events the way the processor does: keyed by volume, on its partition."""

from __future__ import annotations

from collections.abc import Iterable

from tidemark.core.kafka import KafkaClients
from tidemark.core.partitioning import volume_partition
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec, publish_volume
from tidemark.schemas.codec import default_codec

from ...unit.sinks.stream_model import Event, StreamModel


def register(clients: KafkaClients, topics: Topics, model: StreamModel) -> None:
    publish_volume(clients, topics, VolumeSpec(model.volume, model.size, model.block_size))


def _produce(clients: KafkaClients, topic: str, volume: str, values: Iterable[bytes]) -> None:
    producer = clients.producer()
    partitions = len(producer.list_topics(topic, timeout=10).topics[topic].partitions)
    partition = volume_partition(volume, partitions)
    for value in values:
        producer.produce(topic, key=volume.encode(), value=value, partition=partition)
        producer.poll(0)
    assert producer.flush(30) == 0


def publish_changesets(clients: KafkaClients, topics: Topics, volume: str, events: Iterable[Event]) -> None:
    codec = default_codec()
    _produce(clients, topics.changesets, volume, (codec.encode(kind, rec) for kind, rec in events))


def publish_raw(clients: KafkaClients, topics: Topics, volume: str, values: Iterable[bytes]) -> None:
    _produce(clients, topics.changesets, volume, values)


def publish_manifest(clients: KafkaClients, topics: Topics, manifest: list[Event]) -> None:
    """A point's chunk events then its header (StreamModel.manifest), on the volume's partition."""
    codec = default_codec()
    volume = manifest[-1][1]["volume"]
    _produce(clients, topics.recovery_points, volume, (codec.encode(kind, rec) for kind, rec in manifest))
