"""The status command's reads of topics, once, over `tidemark.core.kafka_io`.

`read_all` reads a small metadata topic from its beginning to its end; `read_tail` reads a big
journal (the writes topic) backwards in growing windows until it has seen what it looks for. Both
end at the offsets present when they start (the last stable offset, under read_committed), with
no overall time limit (a topic may be large), only a stall limit of TIMEOUT_S seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from confluent_kafka import Message

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients

TIMEOUT_S = 30.0
FIRST_WINDOW = 512


def read_all(clients: KafkaClients, topic: str) -> Iterator[Message]:
    """Every message of `topic` present when the call starts."""
    return kafka_io.read_topic(clients, topic, stall=TIMEOUT_S)


def read_tail(clients: KafkaClients, topic: str, partition: int, satisfied: Callable[[], bool]) -> Iterator[Message]:
    """Messages of one partition, newest windows first (each window in offset order), until
    `satisfied()` after a window, or the start of the partition."""
    consumer = kafka_io.reader(clients, "status")
    try:
        yield from kafka_io.read_backwards(
            consumer, topic, partition, satisfied, first_window=FIRST_WINDOW, stall=TIMEOUT_S
        )
    finally:
        consumer.close()


def partition_count(clients: KafkaClients, topic: str) -> int:
    consumer = kafka_io.reader(clients, "status")
    try:
        return len(kafka_io.topic_partitions(consumer, topic, TIMEOUT_S))
    finally:
        consumer.close()
