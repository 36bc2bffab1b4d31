"""Per-volume checkpoints of the writes partition, so a (re)connect reads only what follows them.

Topic `<prefix>.tracker-checkpoints`: compacted, one partition, key = the volume name, value =
UTF-8 JSON `{"partition": P, "offset": O}`, where O is the offset in the writes partition P of a
BlockWrite of the volume that Kafka confirmed. It is tracker state, not an event between stages,
hence no Avro schema; a value that does not parse is ignored (the backward scan decides).

The shipper records every confirmed BlockWrite's offset (`CheckpointWriter.delivered`) and
publishes the highest one at most every `CHECKPOINT_INTERVAL_SECONDS`, with its producer (a
checkpoint lost or purged at a reconnect only makes the next scan longer). A connecting tracker reads its volume's
checkpoint and scans the writes partition forward from O (`seq_tail.last_seq_from`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException

from tidemark.core import kafka_io
from tidemark.core.exceptions import KafkaError
from tidemark.core.kafka import KafkaClients
from tidemark.core.topic_admin import cluster_replication, create_topics, topic_specs
from tidemark.core.topics import Topics

CHECKPOINT_INTERVAL_SECONDS = 1.0


def checkpoint_topic(topics: Topics) -> str:
    return topics.tracker_checkpoints


def ensure_checkpoint_topic(clients: KafkaClients, topics: Topics) -> str:
    """Create the checkpoint topic if it is missing (compacted, one partition); returns its name."""
    name = checkpoint_topic(topics)
    if name not in clients.admin().list_topics(timeout=10).topics:  # all topics: no auto-creation
        replication = cluster_replication(clients, clients.settings)
        create_topics(clients, [s for s in topic_specs(topics, clients.settings, replication) if s.name == name])
    return name


@dataclass(frozen=True)
class Checkpoint:
    partition: int
    offset: int
    seq: int
    settled: bool = False


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    fields = {"partition": checkpoint.partition, "offset": checkpoint.offset, "seq": checkpoint.seq}
    return json.dumps(fields | {"settled": checkpoint.settled}).encode()


def decode_checkpoint(value: bytes | None) -> Checkpoint | None:
    """The checkpoint, or None for a tombstone or a value that is not one."""
    if value is None:
        return None
    try:
        fields = json.loads(value)
        partition, offset, seq, settled = fields["partition"], fields["offset"], fields["seq"], fields["settled"]
    except (ValueError, TypeError, KeyError):
        return None
    if not all(type(v) is int for v in (partition, offset, seq)) or type(settled) is not bool:
        return None
    if partition < 0 or offset < 0 or seq < -1:
        return None
    return Checkpoint(partition, offset, seq, settled)


def read_checkpoint(
    consumer: Consumer, topic: str, volume: str, partition: int, timeout: float = 10.0
) -> Checkpoint | None:
    """The volume's latest checkpoint in writes partition `partition`, or None."""
    key = volume.encode()
    found: Checkpoint | None = None
    try:
        for msg in kafka_io.read_to_end(consumer, topic, {0: OFFSET_BEGINNING}, timeout=timeout, stall=None):
            if msg.key() == key:
                checkpoint = decode_checkpoint(msg.value())
                found = checkpoint if checkpoint is not None and checkpoint.partition == partition else None
    except (KafkaError, KafkaException):
        return None  # no checkpoint to trust: the caller reads the partition backwards
    return found


class CheckpointWriter:
    """Thread-safe: the latest confirmed place (offset, seq) of the volume, and when to publish it."""

    def __init__(self, interval: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._latest = (-1, -1)
        self._published = -1
        self._last_time = float("-inf")

    def delivered(self, offset: int, seq: int) -> None:
        """A message of the volume at `offset` confirmed; every seq up to it is at most `seq`."""
        with self._lock:
            self._latest = max(self._latest, (offset, seq))

    @property
    def latest(self) -> tuple[int, int]:
        """(offset, seq) of the latest confirmed place; (-1, -1) before any."""
        with self._lock:
            return self._latest

    def due(self, now: float, partition: int) -> Checkpoint | None:
        """The checkpoint to publish now (then counted as published), or None (nothing new, or too soon)."""
        with self._lock:
            offset, seq = self._latest
            if offset <= self._published or now - self._last_time < self.interval:
                return None
            self._published = offset
            self._last_time = now
            return Checkpoint(partition, offset, seq)
