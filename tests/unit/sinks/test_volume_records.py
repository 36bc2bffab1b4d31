"""`volume_records`: one volume's records of one type out of a per-volume topic's messages."""

from __future__ import annotations

from confluent_kafka import Message

from tidemark.schemas.codec import default_codec
from tidemark.schemas.topic_records import Topic
from tidemark.sinks.reading.volume_records import volume_records

from .stream_model import StreamModel


def _message(offset: int, key: bytes | None, value: bytes | None) -> Message:
    return Message(topic="changesets", partition=0, offset=offset, key=key, value=value)


def test_only_the_volumes_records_of_the_type_are_decoded_in_order() -> None:
    codec = default_codec()
    mine, other = StreamModel("v1", 8 * 4096, 4096), StreamModel("v2", 8 * 4096, 4096)
    mine.write(0, b"a" * 4096)
    other.write(4096, b"b" * 4096)
    events = [("v1", *e) for e in mine.seal()] + [("v2", *e) for e in other.seal()]
    mine.write(8192, b"c" * 4096)
    events += [("v1", *e) for e in mine.seal()]
    messages = [_message(i, volume.encode(), codec.encode(kind, record)) for i, (volume, kind, record) in
                enumerate(events)]  # fmt: skip
    messages += [
        _message(len(messages), b"v1", None),  # a tombstone
        _message(len(messages) + 1, b"v1", b"\xc3\x01not avro"),  # undecodable: passed over
        _message(len(messages) + 2, None, messages[1].value()),  # no key
    ]
    sealed = volume_records(messages, Topic.CHANGESETS, "v1", "ChangeSetSealed")
    found = [(msg.offset(), record["changeset_id"]) for msg, record in sealed]
    seals = [i for i, (volume, kind, _) in enumerate(events) if volume == "v1" and kind == "ChangeSetSealed"]
    assert found == [(seals[0], 1), (seals[1], 2)]
    extents = [record["offset"] for _, record in volume_records(messages, Topic.CHANGESETS, "v1", "Extent")]
    assert extents == [0, 8192]
