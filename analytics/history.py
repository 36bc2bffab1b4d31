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
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tidemark.core.kafka import KafkaClients
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .exceptions import AnalyticsError

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0
WATERMARK_RETRY_S = 0.5
NO_LEADER_YET = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}
)


def watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    """(low, high) offsets of a partition, retried while it has no leader yet (a new topic).

    Raises AnalyticsError naming the partition when the broker does not answer in READ_TIMEOUT_S.
    """
    deadline = time.monotonic() + READ_TIMEOUT_S
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=READ_TIMEOUT_S)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            if not (error.retriable() or error.code() in NO_LEADER_YET) or time.monotonic() > deadline:
                raise AnalyticsError(
                    f"cannot read the offsets of {topic} partition {partition}: {error.str()}; "
                    "check the broker (`tidemark kafka status`) and start again"
                ) from exc
            time.sleep(WATERMARK_RETRY_S)


def recent_alerts(clients: KafkaClients, topic: str, partitions: int, limit: int) -> list[dict[str, Any]]:
    """The last `limit` Alerts of each partition, oldest first by timestamp."""
    consumer = clients.consumer(f"tidemark-analytics-history-{uuid.uuid4().hex}")
    codec = default_codec()
    found: list[dict[str, Any]] = []
    try:
        ends: dict[int, int] = {}
        starts = []
        for partition in range(partitions):
            low, high = watermarks(consumer, topic, partition)
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(topic, partition, max(low, high - limit)))
        consumer.assign(starts)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            part, offset = msg.partition(), msg.offset()
            if part is not None and offset is not None and offset + 1 >= ends.get(part, 0):
                ends.pop(part, None)
            try:
                kind, record = codec.decode(msg.value() or b"")
            except DecodeError:
                continue
            if kind == "Alert":
                found.append(record)
        if ends:
            log.warning("read the recent alerts of %s partially: partitions %s did not reach their end in %.0f s",
                        topic, sorted(ends), READ_TIMEOUT_S)  # fmt: skip
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
    consumer = clients.consumer(f"tidemark-analytics-restore-{uuid.uuid4().hex}")
    table: dict[str, Any] = {}
    try:
        metadata = consumer.list_topics(topic, timeout=READ_TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return table
        ends: dict[int, int] = {}
        starts = []
        for partition in metadata.partitions:
            low, high = watermarks(consumer, topic, partition)
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(topic, partition, low))
        consumer.assign(starts)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            part, offset, key, value = msg.partition(), msg.offset(), msg.key(), msg.value()
            if part is not None and offset is not None and offset + 1 >= ends.get(part, 0):
                ends.pop(part, None)
            if key is None:
                continue
            name = json.loads(key)
            if value is None:
                table.pop(name, None)
            else:
                table[name] = json.loads(value)
        if ends:
            raise AnalyticsError(
                f"restoring {topic}: partitions {sorted(ends)} did not reach their end in {READ_TIMEOUT_S:.0f} s; "
                "check the broker and start again"
            )
    finally:
        consumer.close()
    return table
