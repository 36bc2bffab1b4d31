"""Ticks: a message with a reserved key in every writes partition, so idle volumes seal on time.

Sealing happens only while handling the partition, in order. A tick is handled like any event,
with its own timestamp as "now" (see handler.py), so processing the log again makes the same
decisions.
"""

from __future__ import annotations

from confluent_kafka import Producer

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients

TICK_KEY = b"__tidemark_tick__"
"""The key of a tick; no volume name can have it."""


class Ticker:
    def __init__(self, clients: KafkaClients, topic: str, partitions: int) -> None:
        self._producer: Producer = clients.producer(**{"linger.ms": 0, "enable.idempotence": False, "acks": 1})
        self._topic = topic
        self._partitions = partitions

    def tick(self) -> None:
        for partition in range(self._partitions):
            kafka_io.produce(self._producer, self._topic, b"", key=TICK_KEY, partition=partition)
        self._producer.poll(0)

    def close(self) -> None:
        self._producer.flush(5)
