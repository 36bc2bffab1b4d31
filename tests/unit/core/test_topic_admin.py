"""The topic plan: which topics, how many partitions, which configs."""

from __future__ import annotations

from tidemark.core.settings import Settings
from tidemark.core.topic_admin import topic_specs
from tidemark.core.topics import Topics


def test_every_topic_of_the_design_is_planned_once() -> None:
    topics = Topics("site-a")
    specs = topic_specs(topics, Settings())
    assert [s.name for s in specs] == topics.all()


def test_volumes_compacted_writes_retained_and_one_size_limit() -> None:
    settings = Settings(writes_retention_ms=3_600_000, message_max_bytes=8 << 20, partitions=6)
    topics = Topics("tidemark")
    specs = {s.name: s for s in topic_specs(topics, settings)}
    assert specs[topics.volumes].config["cleanup.policy"] == "compact"
    assert specs[topics.writes].config["retention.ms"] == "3600000"
    assert "cleanup.policy" not in specs[topics.writes].config
    assert all(s.config["max.message.bytes"] == str(8 << 20) for s in specs.values())
    assert specs[topics.writes].partitions == 6
    assert specs[topics.changesets].partitions == 6
    assert specs[topics.volumes].partitions == 1
