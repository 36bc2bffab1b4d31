"""One volume's records of one type, out of the messages of a per-volume topic.

A per-volume topic's partition holds many volumes and several record types (change sets: Extent,
ChangeSetSealed, ResyncRequest; recovery points: header and chunks). Readers that want one type
peek each value's record type (`record_type_on`, no body decoded) and decode only that type, so a
reader of seals never decodes an Extent's data. A value that cannot be decoded, or whose type does
not belong on the topic, is passed over: a reader of the stream (the applier) dead-letters it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Message

from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError
from tidemark.schemas.topic_records import Topic, record_type_on


def volume_records(
    messages: Iterable[Message], topic: Topic, volume: str, record_type: str
) -> Iterator[tuple[Message, dict[str, Any]]]:
    """(message, decoded record) of each message of `topic` keyed by `volume` whose value is a `record_type`."""
    codec = default_codec()
    key = volume.encode()
    for msg in messages:
        value = msg.value()
        if msg.key() != key or not value:
            continue
        try:
            if record_type_on(topic, value, codec) != record_type:
                continue
            _, record = codec.decode(value)
        except DecodeError:
            continue
        yield msg, record
