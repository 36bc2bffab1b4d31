"""The topic plan: which topics, how many partitions, which replication and configs."""

from __future__ import annotations

import pytest

from tidemark.core.settings import Settings
from tidemark.core.topic_admin import Replication, replication_for, topic_specs
from tidemark.core.topics import Topics

ONE = Replication(1, 1)


def test_every_topic_of_the_design_is_planned_once() -> None:
    topics = Topics("site-a")
    specs = topic_specs(topics, Settings(), ONE)
    assert [s.name for s in specs] == topics.all()


def test_volumes_compacted_writes_retained_and_one_size_limit() -> None:
    settings = Settings(writes_retention_ms=3_600_000, message_max_bytes=8 << 20, partitions=6)
    topics = Topics("tidemark")
    specs = {s.name: s for s in topic_specs(topics, settings, ONE)}
    assert specs[topics.volumes].config["cleanup.policy"] == "compact"
    assert specs[topics.writes].config["retention.ms"] == "3600000"
    assert "cleanup.policy" not in specs[topics.writes].config
    assert all(s.config["max.message.bytes"] == str(8 << 20) for s in specs.values())
    assert specs[topics.writes].partitions == 6
    assert specs[topics.changesets].partitions == 6
    assert specs[topics.volumes].partitions == 1


def test_the_journal_takes_the_brokers_clock_and_no_other_topic_does() -> None:
    topics = Topics("tidemark")
    specs = {s.name: s for s in topic_specs(topics, Settings(), ONE)}
    assert specs[topics.writes].config["message.timestamp.type"] == "LogAppendTime"
    assert [n for n, s in specs.items() if "message.timestamp.type" in s.config] == [topics.writes]


@pytest.mark.parametrize(
    ("brokers", "requested", "factor", "min_insync"),
    [(1, None, 1, 1), (2, None, 2, 2), (3, None, 3, 2), (5, None, 3, 2), (5, 5, 5, 2), (3, 1, 1, 1)],
)
def test_replication_follows_the_cluster(brokers: int, requested: int | None, factor: int, min_insync: int) -> None:
    assert replication_for(brokers, requested) == Replication(factor, min_insync)


def test_every_topic_gets_the_replication() -> None:
    specs = topic_specs(Topics("t"), Settings(), Replication(3, 2))
    assert all(s.replication_factor == 3 and s.config["min.insync.replicas"] == "2" for s in specs)
