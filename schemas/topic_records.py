"""Which record types each topic carries, and the decoding that refuses any other.

Keys are the topic's role, the name of its property in `tidemark.core.topics.Topics` (the same
for every prefix). A stage decodes a topic's messages with `decode_on(role, value)`: a record of a
type that does not belong there raises `WrongTopicError`, a `DecodeError`, so it takes the
stage's existing path for undecodable input (a dead letter, or a skip where the stage reads
to look). The type is read from the header's fingerprint before the body is decoded.
`<prefix>.tracker-checkpoints` carries JSON, not Avro events, and has no entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from .codec import Codec, Record, default_codec
from .exceptions import DecodeError


class Topic(StrEnum):
    """A topic's role: the name of its property in `tidemark.core.topics.Topics`."""

    VOLUMES = "volumes"
    WRITES = "writes"
    CHANGESETS = "changesets"
    RECOVERY_POINTS = "recovery_points"
    MIRROR_STATUS = "mirror_status"
    METRICS = "metrics"
    DEAD_LETTERS = "dead_letters"
    ALERTS = "alerts"
    READ_PROFILES = "read_profiles"


CARRIES: Mapping[Topic, frozenset[str]] = {
    Topic.VOLUMES: frozenset({"Volume"}),
    Topic.WRITES: frozenset({"BlockWrite", "Marker"}),
    Topic.CHANGESETS: frozenset({"Extent", "ChangeSetSealed", "ResyncRequest"}),
    Topic.RECOVERY_POINTS: frozenset({"RecoveryPoint", "RecoveryPointChunk"}),
    Topic.MIRROR_STATUS: frozenset({"MirrorStatus"}),
    Topic.METRICS: frozenset({"VolumeMetrics"}),
    Topic.DEAD_LETTERS: frozenset({"DeadLetter"}),
    Topic.ALERTS: frozenset({"Alert"}),
    Topic.READ_PROFILES: frozenset({"ReadProfile"}),
}
"""Topic role -> the record types its messages may hold (the writes topic's ticks are not events)."""


class WrongTopicError(DecodeError):
    """A well-formed event of a record type that does not belong on the topic it was read from."""


def check_on(topic: Topic, record_type: str) -> None:
    """Raise `WrongTopicError` unless `topic` carries `record_type`."""
    carried = CARRIES[topic]
    if record_type not in carried:
        raise WrongTopicError(
            f"record type {record_type} does not belong on the {topic} topic (it carries "
            f"{', '.join(sorted(carried))}); the producer that wrote it sends to the wrong topic"
        )


def record_type_on(topic: Topic, data: bytes, codec: Codec | None = None) -> str:
    """The record type of `data` from its header, refused unless `topic` carries it."""
    record_type = (codec or default_codec()).record_type_of(data)
    check_on(topic, record_type)
    return record_type


def decode_on(topic: Topic, data: bytes, codec: Codec | None = None) -> tuple[str, Record]:
    """`(record_type, record)` of an event read from `topic`; `WrongTopicError` when it does not belong."""
    codec = codec or default_codec()
    record_type_on(topic, data, codec)
    return codec.decode(data)
