"""Recovery point manifests of a volume, read from the recovery-points topic."""

from __future__ import annotations

from typing import Any

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics

from .exceptions import UnknownRecoveryPointError
from .topic_reader import read_records


def recovery_points(clients: KafkaClients, topics: Topics, volume: str) -> dict[int, dict[str, Any]]:
    """rp_id -> manifest of every recovery point of the volume still in the topic."""
    found: dict[int, dict[str, Any]] = {}
    for record in read_records(clients, topics.recovery_points, "RecoveryPoint", key=volume):
        if record["volume"] == volume:
            found[record["rp_id"]] = record
    return dict(sorted(found.items()))


def manifest(clients: KafkaClients, topics: Topics, volume: str, rp_id: int) -> dict[str, Any]:
    found = recovery_points(clients, topics, volume).get(rp_id)
    if found is None:
        raise UnknownRecoveryPointError(
            f"no manifest of recovery point {rp_id} of volume {volume!r} in {topics.recovery_points}; "
            f"list the points with `tidemark rp list --volume {volume}`"
        )
    return found
