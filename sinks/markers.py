"""Ask for a recovery point: a REQUESTED Marker in the volume's write stream.

The marker goes to the same partition as the volume's writes (`volume_partition`), so its position
among the writes defines the cut; the processor turns it into a recovery point.
"""

from __future__ import annotations

import time
import uuid

from tidemark.core.kafka import KafkaClients
from tidemark.core.names import validate_name
from tidemark.core.partitioning import volume_partition
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec

from .exceptions import SinkError
from .topic_reader import partitions_of

DELIVERY_TIMEOUT_S = 30.0


def request_recovery_point(clients: KafkaClients, topics: Topics, volume: str, label: str | None) -> str:
    """Publish the marker and wait for Kafka to confirm it; returns its marker_id."""
    validate_name(volume)
    marker_id = str(uuid.uuid4())
    record = {
        "volume": volume,
        "marker_id": marker_id,
        "kind": "REQUESTED",
        "timestamp": time.time_ns() // 1000,
        "label": label,
    }
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
