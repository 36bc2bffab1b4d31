"""Ask for a recovery point: a REQUESTED Marker in the volume's write stream, or a BARRIER
marker in the stream of every member of a consistency group.

A marker goes to the same partition as the volume's writes (`volume_partition`), so its position
among the writes defines the cut; the processor turns it into a recovery point. A group barrier
carries one barrier id to every member; the group's point is complete when every member's is.
Every marker carries the volume's current primary generation from the registry, so the processor
never takes an operator's marker for one of a fenced generation.
"""

from __future__ import annotations

import time
import uuid

from tidemark.core.kafka import KafkaClients
from tidemark.core.names import validate_name
from tidemark.core.partitioning import volume_partition
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec, lookup_volume, read_volumes
from tidemark.schemas import records
from tidemark.schemas.codec import default_codec

from ..exceptions import SinkError
from ..reading.topic_reader import partitions_of

DELIVERY_TIMEOUT_S = 30.0


def request_recovery_point(
    clients: KafkaClients,
    topics: Topics,
    volume: str,
    label: str | None,
    *,
    group: str | None = None,
    barrier_id: str | None = None,
) -> str:
    """Publish the marker and wait for Kafka to confirm it; returns its marker_id."""
    return _publish(clients, topics, lookup_volume(clients, topics, volume), label, group, barrier_id)


def _publish(
    clients: KafkaClients,
    topics: Topics,
    spec: VolumeSpec,
    label: str | None,
    group: str | None,
    barrier_id: str | None,
) -> str:
    volume = spec.name
    marker_id = records.new_marker_id()
    record = records.marker(
        volume=volume,
        marker_id=marker_id,
        kind="BARRIER" if barrier_id else "REQUESTED",
        timestamp=time.time_ns() // 1000,
        label=label,
        group=group,
        barrier_id=barrier_id,
        generation=spec.generation,
    )
    producer = clients.producer()
    partition = volume_partition(volume, len(partitions_of(producer, topics.writes)))
    errors: list[str] = []
    producer.produce(
        topics.writes,
        key=volume.encode(),
        value=default_codec().encode("Marker", record),
        partition=partition,
        on_delivery=lambda err, _msg: errors.append(str(err)) if err is not None else None,
    )
    if producer.flush(DELIVERY_TIMEOUT_S) or errors:
        raise SinkError(
            f"the recovery point request for {volume!r} was not confirmed by {topics.writes}: "
            f"{errors[0] if errors else f'no answer within {DELIVERY_TIMEOUT_S:.0f} s'}"
        )
    return marker_id


def request_group_barrier(
    clients: KafkaClients, topics: Topics, group: str, label: str | None
) -> tuple[str, list[str]]:
    """A BARRIER marker with one barrier id for every registered member of `group`."""
    validate_name(group, "consistency group")
    members = sorted((v for v in read_volumes(clients, topics).values() if v.group == group), key=lambda v: v.name)
    if not members:
        raise SinkError(f"consistency group {group!r} has no volumes; add some with `tidemark volume add --group`")
    barrier_id = str(uuid.uuid4())
    for spec in members:
        _publish(clients, topics, spec, label, group, barrier_id)
    return barrier_id, [spec.name for spec in members]
