"""Ticks: a message with a reserved key in every writes partition, so idle volumes seal on time.

Sealing happens only while handling the partition, in order. A tick is handled like any event,
with its own timestamp as "now" (see handler.py), so processing the log again makes the same
decisions.

Ticks are produced by a thread of their own, every `interval` seconds of wall time, whatever the
processing loop is doing: produced between batches, they came only as often as batches did, so a
pause in a volume's writes while a slow batch was handled held its seal, and a due point, until the
next write (figure 12 saw a point 0.6 s late that way).
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import Producer

from tidemark.core import kafka_io
from tidemark.core.exceptions import KafkaError
from tidemark.core.kafka import KafkaClients

log = logging.getLogger(__name__)

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


class TickerThread:
    """Runs `Ticker.tick` every `interval` seconds on a daemon thread until `stop`."""

    def __init__(self, ticker: Ticker, interval: float) -> None:
        self._ticker = ticker
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="processor-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._ticker.tick()
            except KafkaError as exc:  # the queue stayed full (broker gone): try again next interval
                log.warning("ticks not produced: %s", exc)
            self._stopping.wait(self._interval)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        self._ticker.close()
