"""A topic's partitions from the cluster's metadata, with the one "run `tidemark topics create`" error."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from .exceptions import KafkaError, TopicMissingError


def topic_partitions(client: Consumer | Producer | AdminClient, topic: str, timeout: float) -> list[int]:
    """The partition ids of `topic`, sorted. A topic that does not exist (or has no partitions)
    raises TopicMissingError naming it and `tidemark topics create`; unreadable metadata, KafkaError."""
    try:
        metadata = client.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaError(f"cannot read the metadata of topic {topic}: {exc}; is the broker up?") from exc
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise TopicMissingError(
            f"topic {topic} does not exist: run `tidemark topics create` (with the same TIDEMARK_TOPIC_PREFIX)"
        )
    return sorted(found.partitions)
