"""The processor's state changelog: a compacted topic, one partition per writes partition."""

from __future__ import annotations

from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients
from tidemark.core.topic_admin import cluster_replication

from .exceptions import ProcessorError
from .state_store import PartitionStore


def changelog_topic(prefix: str, app_id: str) -> str:
    return f"{prefix}.{app_id}-state-changelog"


def ensure_changelog(clients: KafkaClients, topic: str, partitions: int) -> None:
    """The compacted changelog, replicated like the other topics (min(3, brokers), min ISR min(2, RF))."""
    admin = clients.admin()
    replication = cluster_replication(clients, clients.settings)
    spec = NewTopic(
        topic,
        num_partitions=partitions,
        replication_factor=replication.factor,
        config={
            "cleanup.policy": "compact",
            "max.message.bytes": str(clients.settings.message_max_bytes),
            "min.compaction.lag.ms": "0",
            "min.insync.replicas": str(replication.min_insync),
        },
    )
    for future in admin.create_topics([spec]).values():
        try:
            future.result(timeout=30)
        except Exception as exc:  # TopicAlreadyExists arrives as a KafkaException
            error = exc.args[0] if exc.args else None
            if getattr(error, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ProcessorError(f"cannot create the state changelog {topic}: {exc}") from exc


def restore(clients: KafkaClients, topic: str, partition: int, store: PartitionStore, timeout: float = 300.0) -> int:
    """Replay the committed changelog of one partition into `store`; returns the records read."""
    records = 0
    for msg in kafka_io.read_topic(clients, topic, [partition], timeout=timeout, stall=None):
        key = msg.key()
        if key is None:
            raise ProcessorError(f"restoring {topic}[{partition}]: a record without a key at {msg.offset()}")
        store.restore(key, msg.value())
        records += 1
    return records
