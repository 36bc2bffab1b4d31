"""What the app reads back when it starts: its tables from their changelog topics, and the recent
Alert events from the alerts topic, so a restarted dashboard still marks the clean points and
active episodes (the topic is the alerts' record).

Reads at most the last `limit` messages of each partition, up to the offsets present at the start;
a partition that does not reach its end in READ_TIMEOUT_S is left partly read (with a warning):
the history only decorates the dashboard.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tidemark.core import kafka_io
from tidemark.core.exceptions import KafkaError, TopicMissingError
from tidemark.core.kafka import KafkaClients
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .exceptions import AnalyticsError

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0


def watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    """(low, high) offsets of a partition, retried while it has no leader yet (a new topic).

    Raises AnalyticsError naming the partition when the broker does not answer in READ_TIMEOUT_S.
    """
    try:
        return kafka_io.watermarks(consumer, topic, partition, READ_TIMEOUT_S, wait_for_leader=True)
    except KafkaError as exc:
        raise AnalyticsError(f"{exc}; then start again") from exc


def recent_alerts(clients: KafkaClients, topic: str, partitions: int, limit: int) -> list[dict[str, Any]]:
    """The last `limit` Alerts of each partition, oldest first by timestamp."""
    consumer = kafka_io.reader(clients, "analytics-history")
    codec = default_codec()
    found: list[dict[str, Any]] = []
    try:
        starts, ends = {}, {}
        for partition in range(partitions):
            low, ends[partition] = watermarks(consumer, topic, partition)
            starts[partition] = max(low, ends[partition] - limit)
        for msg in kafka_io.read_to_end(consumer, topic, starts, ends, timeout=READ_TIMEOUT_S, stall=None):
            try:
                kind, record = codec.decode(msg.value() or b"")
            except DecodeError:
                continue
            if kind == "Alert":
                found.append(record)
    except KafkaError as exc:
        log.warning("read the recent alerts of %s partially: %s", topic, exc)
    finally:
        consumer.close()
    return sorted(found, key=lambda alert: alert["timestamp"])


def unread_ends(clients: KafkaClients, topic: str, partitions: int, group: str) -> dict[int, int]:
    """The end offset (after the last message) of each partition of `topic` that consumer group
    `group` has not committed up to (the last message's offset + 1) yet, now.

    A transactional producer's last commit marker takes an offset of its own that no consumer
    is handed, so a partition counts as read from `end - 1` on.
    """
    consumer = clients.consumer(group)
    try:
        ends = {}
        for partition in range(partitions):
            low, high = watermarks(consumer, topic, partition)
            if high > low:
                ends[partition] = high
        committed = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=READ_TIMEOUT_S)
        return {tp.partition: ends[tp.partition] for tp in committed if tp.offset < ends[tp.partition] - 1}
    finally:
        consumer.close()


def read_changelog(clients: KafkaClients, topic: str) -> dict[str, Any]:
    """The newest JSON value of every key of a table's changelog topic ({} when it does not exist).

    faust keeps each table in RocksDB and in this compacted topic; after a restart from local
    state its RocksDB store lists no key until a partition database is opened again, so the app
    starts from the changelog itself.
    """
    consumer = kafka_io.reader(clients, "analytics-restore")
    table: dict[str, Any] = {}
    try:
        try:
            parts = kafka_io.topic_partitions(consumer, topic, READ_TIMEOUT_S)
        except TopicMissingError:
            return table
        bounds = {partition: watermarks(consumer, topic, partition) for partition in parts}
        starts = {partition: low for partition, (low, _high) in bounds.items()}
        ends = {partition: high for partition, (_low, high) in bounds.items()}
        for msg in kafka_io.read_to_end(consumer, topic, starts, ends, timeout=READ_TIMEOUT_S, stall=None):
            key, value = msg.key(), msg.value()
            if key is None:
                continue
            name = json.loads(key)
            if value is None:
                table.pop(name, None)
            else:
                table[name] = json.loads(value)
    except KafkaError as exc:
        raise AnalyticsError(f"restoring {topic}: {exc}; check the broker and start again") from exc
    finally:
        consumer.close()
    return table
