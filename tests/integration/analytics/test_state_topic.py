"""The journal reader's stores on the real broker: what a TopicStore logs is what the app reads
back at startup (history.read_changelog), deletes included; and which recovery points the
journal reader waits for (history.unread_ends) follows the faust group's committed offsets."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from tidemark.analytics.history import read_changelog, unread_ends
from tidemark.analytics.state_topic import TopicStore, changelog_topic, ensure_state_topic
from tidemark.core.partitioning import volume_partition

from ...conftest import TidemarkTest

pytestmark = [pytest.mark.integration]

PARTITIONS = 3


def test_a_topic_store_reads_back_as_its_last_values(tm: TidemarkTest) -> None:
    topic = changelog_topic(f"{tm.prefix}.analytics", "volumes")
    ensure_state_topic(tm.clients, tm.settings, topic, PARTITIONS)
    producer = tm.clients.producer()
    store = TopicStore(producer, topic, PARTITIONS, {"old": {"writes": 1}})
    for n in range(5):
        store[f"vol{n}"] = {"writes": n, "window": {"blocks": "AAE="}}
    store["vol1"] = {"writes": 10}
    del store["vol2"]
    assert producer.flush(30) == 0
    assert dict(store) == {"old": {"writes": 1}, "vol0": {"writes": 0, "window": {"blocks": "AAE="}},
                           "vol1": {"writes": 10}, "vol3": {"writes": 3, "window": {"blocks": "AAE="}},
                           "vol4": {"writes": 4, "window": {"blocks": "AAE="}}}  # fmt: skip
    # what was logged: "old" came with the store and is not logged again
    assert read_changelog(tm.clients, topic) == {k: v for k, v in store.items() if k != "old"}


def test_the_journal_waits_for_the_points_its_faust_group_has_not_committed(tm: TidemarkTest) -> None:
    topic = tm.topics.recovery_points
    partitions = len(tm.clients.admin().list_topics(topic, timeout=10).topics[topic].partitions)
    group = tm.group("faust-app")
    assert unread_ends(tm.clients, topic, partitions, group) == {}  # nothing written yet
    producer = tm.clients.producer()
    partition = volume_partition("vol", partitions)
    for n in range(3):
        producer.produce(topic, key=b"vol", value=f"point {n}".encode(), partition=partition)
    assert producer.flush(30) == 0
    assert unread_ends(tm.clients, topic, partitions, group) == {partition: 3}
    consumer = tm.clients.consumer(group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, partition, 2)], asynchronous=False)
        assert unread_ends(tm.clients, topic, partitions, group) == {}  # end - 1: a marker's place
    finally:
        consumer.close()
