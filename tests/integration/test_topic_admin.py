"""`ensure_topics` on the real cluster: replication from the live brokers, the journal on broker time."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from ..conftest import TidemarkTest

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


def _config(tm: TidemarkTest, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = tm.clients.admin()  # kept alive until the answer arrives
    described = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in described.items()}


def test_replication_follows_the_live_brokers(tm: TidemarkTest) -> None:
    metadata = tm.clients.admin().list_topics(timeout=30)
    factor = min(3, len(metadata.brokers))
    for name in tm.topics.all():
        assert {len(p.replicas) for p in metadata.topics[name].partitions.values()} == {factor}, name
        assert _config(tm, name)["min.insync.replicas"] == str(min(2, factor)), name


def test_the_journal_keeps_the_brokers_time_not_the_producers(tm: TidemarkTest) -> None:
    """A producer whose clock runs an hour ahead: the stored timestamp is the broker's append time."""
    assert _config(tm, tm.topics.writes)["message.timestamp.type"] == "LogAppendTime"
    producer = tm.clients.producer()
    before_ms = int(time.time() * 1000)
    producer.produce(tm.topics.writes, key=b"vm1", value=b"ahead", partition=0, timestamp=before_ms + HOUR_MS)
    assert producer.flush(30) == 0
    consumer = tm.clients.consumer(tm.group("clock"))
    try:
        consumer.assign([TopicPartition(tm.topics.writes, 0, 0)])
        message = None
        deadline = time.monotonic() + 30
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(1.0)
        assert message is not None and message.error() is None
        kind, stamp_ms = message.timestamp()
    finally:
        consumer.close()
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    assert before_ms - 5_000 <= stamp_ms <= int(time.time() * 1000) + 5_000
