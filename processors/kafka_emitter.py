"""Encodes the folder's events and hands them to the runner's transactional producer.

Nothing it sends can crash the worker by size: an event whose encoding would pass
`message_max_bytes` is not produced; a DeadLetter (bounded, see
`tidemark.schemas.records.dead_letter`) says which event of which volume it was, naming the writes
message being handled, and the partition flows on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tidemark.core.metrics import stage_metrics
from tidemark.core.topics import Topics
from tidemark.schemas import records
from tidemark.schemas.codec import default_codec

log = logging.getLogger(__name__)

COMPONENT = "processor"
RECORD_OVERHEAD_BYTES = 1024
"""Room kept under `message_max_bytes` for the key, headers and the record batch framing."""

Produce = Callable[[str, bytes | None, bytes], None]


@dataclass(frozen=True)
class SourceMessage:
    """The writes message being handled: a dead letter names it."""

    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int


class KafkaEmitter:
    def __init__(self, topics: Topics, produce: Produce, message_max_bytes: int) -> None:
        self.topics = topics
        self.produce = produce
        self.message_max_bytes = message_max_bytes
        self.codec = default_codec()
        self.source_at: tuple[int, int, bytes | None, float] = (-1, -1, None, 0.0)
        """(partition, offset, key, timestamp in s) of the writes message being handled: the
        handler sets it per message, `source` makes a SourceMessage of it only when one is needed"""
        self.dead_letters = 0

    @property
    def source(self) -> SourceMessage:
        """The writes message being handled (`source_at`)."""
        partition, offset, key, now = self.source_at
        return SourceMessage(partition, offset, key, int(now * 1000))

    def changeset_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None:
        if self._send(self.topics.changesets, volume, record_type, record):
            if record_type == "ChangeSetSealed":
                stage_metrics(COMPONENT, volume).handled(0, record["bytes"])
            elif record_type == "ResyncRequest":
                stage_metrics(COMPONENT, volume).resync_request()

    def recovery_point_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None:
        if self._send(self.topics.recovery_points, volume, record_type, record) and record_type == "RecoveryPoint":
            stage_metrics(COMPONENT, volume).recovery_point()

    def metrics(self, volume: str, record: records.VolumeMetrics) -> None:
        if self._send(self.topics.metrics, volume, "VolumeMetrics", record):
            stage_metrics(COMPONENT, volume).lag(record["rpo_lag_seconds"])

    def fenced(self, volume: str) -> None:
        """Count an event refused for its older generation (its dead letter is sent apart)."""
        stage_metrics(COMPONENT, volume).fenced()

    def dead_letter(self, reason: str, value: bytes | None, volume: str | None) -> None:
        """A DeadLetter for the message being handled (or for an event made from it)."""
        self.dead_letters += 1
        source = self.source
        stage_metrics(COMPONENT, volume or "").dead_letter()
        log.warning("dead letter from %s[%d]@%d: %s", self.topics.writes, source.partition, source.offset, reason)
        record = records.dead_letter(
            stage=COMPONENT,
            reason=reason,
            topic=self.topics.writes,
            partition=source.partition,
            offset=source.offset,
            key=source.key,
            value=value,
            volume=volume,
            timestamp=source.timestamp_ms,
        )
        self.produce(self.topics.dead_letters, source.key, self.codec.encode("DeadLetter", record))

    def _send(self, topic: str, volume: str, record_type: str, record: Mapping[str, Any]) -> bool:
        value = self.codec.encode(record_type, record)
        key = volume.encode()
        if len(value) + len(key) + RECORD_OVERHEAD_BYTES > self.message_max_bytes:
            self.dead_letter(
                f"{record_type} of volume {volume} for {topic} is {len(value)} bytes, over message_max_bytes "
                f"{self.message_max_bytes}: not produced; raise TIDEMARK_MESSAGE_MAX_BYTES (and the topics' "
                "max.message.bytes) or lower TIDEMARK_EXTENT_BYTES",
                value,
                volume,
            )
            return False
        self.produce(topic, key, value)
        return True
