"""Recovery point manifests of a volume, read from the recovery-points topic: the one reader.

`recovery_points` lists the complete points (headers only): it reads just the partitions that can
hold the volume's key, peeks each record type and never decodes a chunk body. `point_chunks`
streams one point's chunks in order, from right after the volume's previous header to the point's
own header, checking them against the header: one chunk (at most 65,536 blocks) in memory at a
time. Every reader of manifests goes through here: verify, mount, revert, failover, failback,
`rp list`, status and the demo.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas.topic_records import Topic

from .exceptions import UnknownRecoveryPointError
from .reading.key_partitions import key_partitions
from .reading.manifest_index import Chunk, ChunkSequence, HeaderIndex, PointLocation, chunk_of
from .reading.topic_reader import partitions_of, position, read_partitions, reader_consumer
from .reading.volume_records import volume_records

HEADER = "RecoveryPoint"
CHUNK = "RecoveryPointChunk"


def point_locations(clients: KafkaClients, topics: Topics, volume: str) -> dict[int, PointLocation]:
    """rp_id -> where each complete point of the volume sits, ascending; headers only."""
    consumer = reader_consumer(clients)
    try:
        return _locations(consumer, topics.recovery_points, volume)
    finally:
        consumer.close()


def recovery_points(clients: KafkaClients, topics: Topics, volume: str) -> dict[int, dict[str, Any]]:
    """rp_id -> header of every complete recovery point of the volume still in the topic."""
    return {rp: location.header for rp, location in point_locations(clients, topics, volume).items()}


def manifest(clients: KafkaClients, topics: Topics, volume: str, rp_id: int) -> dict[str, Any]:
    """The header of one point."""
    return locate(point_locations(clients, topics, volume), volume, rp_id, topics).header


def locate(points: dict[int, PointLocation], volume: str, rp_id: int, topics: Topics) -> PointLocation:
    found = points.get(rp_id)
    if found is None:
        raise UnknownRecoveryPointError(
            f"no manifest of recovery point {rp_id} of volume {volume!r} in {topics.recovery_points}; "
            f"list the points with `tidemark rp list --volume {volume}`"
        )
    return found


def point_chunks(clients: KafkaClients, topics: Topics, volume: str, location: PointLocation) -> Iterator[Chunk]:
    """The chunks of one complete point, index 0..n-1, each checked; ManifestError if not whole."""
    consumer = reader_consumer(clients)
    try:
        yield from _chunks(consumer, topics.recovery_points, volume, location)
    finally:
        consumer.close()


def _locations(consumer: Consumer, topic: str, volume: str) -> dict[int, PointLocation]:
    found: dict[int, PointLocation] = {}
    for partition in key_partitions(volume, len(partitions_of(consumer, topic))):
        index = HeaderIndex(volume, partition, 0)
        messages = read_partitions(consumer, topic, {partition: OFFSET_BEGINNING})
        for msg, record in volume_records(messages, Topic.RECOVERY_POINTS, volume, HEADER):
            index.header(position(msg)[1], record)
        found.update(index.points)
    return dict(sorted(found.items()))


def _chunks(consumer: Consumer, topic: str, volume: str, location: PointLocation) -> Iterator[Chunk]:
    sequence = ChunkSequence(volume, location.header)
    if sequence.chunk_count:
        starts = {location.partition: location.start_offset}
        messages = read_partitions(consumer, topic, starts, {location.partition: location.header_offset})
        for msg, record in volume_records(messages, Topic.RECOVERY_POINTS, volume, CHUNK):
            if record["volume"] == volume and record["rp_id"] == location.rp_id:
                yield sequence.accept(chunk_of(record), position(msg)[1])
    sequence.finish()
