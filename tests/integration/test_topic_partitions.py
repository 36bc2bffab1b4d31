"""The one "run `tidemark topics create`" error, against a real broker."""

from __future__ import annotations

import pytest

from tidemark.core.exceptions import TopicMissingError
from tidemark.core.topic_partitions import topic_partitions

pytestmark = pytest.mark.integration


def test_partitions_of_a_topic_and_the_error_for_a_missing_one(tm) -> None:  # noqa: ANN001
    consumer = tm.clients.consumer("tidemark-test-partitions")
    try:
        assert topic_partitions(consumer, tm.topics.writes, 10) == list(range(tm.settings.partitions))
        missing = f"{tm.topics.writes}-missing"
        with pytest.raises(TopicMissingError, match=f"topic {missing} does not exist: run `tidemark topics create`"):
            topic_partitions(consumer, missing, 10)
    finally:
        consumer.close()
