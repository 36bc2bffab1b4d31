"""The recent Alert events, read back from the alerts topic when the app starts, so a restarted
dashboard still marks the clean points and active episodes (the topic is the alerts' record).

Reads at most the last `limit` messages of each partition, up to the offsets present at the start;
a partition that does not reach its end in READ_TIMEOUT_S is left partly read (with a warning):
the history only decorates the dashboard.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from confluent_kafka import TopicPartition
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from tidemark.core.kafka import KafkaClients

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0


def recent_alerts(clients: KafkaClients, topic: str, partitions: int, limit: int) -> list[dict[str, Any]]:
    """The last `limit` Alerts of each partition, oldest first by timestamp."""
    consumer = clients.consumer(f"tidemark-analytics-history-{uuid.uuid4().hex}")
    codec = default_codec()
    found: list[dict[str, Any]] = []
    try:
        ends: dict[int, int] = {}
        starts = []
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=READ_TIMEOUT_S)
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
