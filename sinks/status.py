"""MirrorStatus events: what each site's mirror holds and how far behind it is."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Producer

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas import records
from tidemark.schemas.codec import default_codec

from .reading.topic_reader import read_records
from .storage.progress import Progress


def status_key(site: str, volume: str) -> str:
    return f"{site}/{volume}"


def status_record(progress: Progress, lag_events: int, lag_seconds: float) -> records.MirrorStatus:
    return records.mirror_status(
        site=progress.site,
        volume=progress.volume,
        state=progress.state,
        changeset_id=progress.changeset_id or None,
        applied_seq=progress.seq_last,
        rp_id=progress.rp_id,
        lag_events=lag_events,
        lag_seconds=lag_seconds,
        timestamp=int(time.time() * 1000),
        message=progress.message,
    )


def publish_status(producer: Producer, topics: Topics, record: records.MirrorStatus) -> None:
    value = default_codec().encode("MirrorStatus", record)
    producer.produce(topics.mirror_status, key=status_key(record["site"], record["volume"]), value=value)
    producer.poll(0)


def latest_statuses(clients: KafkaClients, topics: Topics, volume: str) -> dict[str, dict[str, Any]]:
    """site -> the last MirrorStatus of that site's mirror of the volume."""
    found: dict[str, dict[str, Any]] = {}
    for record in read_records(clients, topics.mirror_status, "MirrorStatus"):
        if record["volume"] == volume:
            found[record["site"]] = record
    return found
