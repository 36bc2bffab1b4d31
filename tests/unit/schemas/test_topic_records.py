"""The declaration of which record types each topic carries, and the decoding that enforces it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError
from tidemark.schemas.records import CONSTRUCTORS, dead_letter, marker, volume
from tidemark.schemas.topic_records import CARRIES, Topic, WrongTopicError, check_on, decode_on, record_type_on

from .test_records import COMPUTED, constructor_arguments

NOT_AVRO = {"tracker_checkpoints"}


def test_every_avro_topic_of_the_design_has_a_declaration() -> None:
    topics = Topics("p")
    declared = {getattr(topics, role.value) for role in Topic}
    assert declared | {getattr(topics, name) for name in NOT_AVRO} == set(topics.all())
    assert set(CARRIES) == set(Topic)


def test_every_record_type_belongs_on_exactly_one_topic() -> None:
    carried = [record_type for types in CARRIES.values() for record_type in types]
    assert sorted(carried) == sorted(CONSTRUCTORS)


def test_a_record_on_its_topic_decodes() -> None:
    record = marker(volume="vm1", marker_id="m", kind="FLUSH", timestamp=1)
    assert decode_on(Topic.WRITES, default_codec().encode("Marker", record)) == ("Marker", record)


@pytest.mark.parametrize("topic", sorted(set(Topic) - {Topic.VOLUMES}))
def test_a_volume_record_is_refused_on_every_other_topic(topic: Topic) -> None:
    value = default_codec().encode("Volume", volume(name="vm1", size=4096, block_size=4096, created_at=0))
    with pytest.raises(WrongTopicError, match=f"record type Volume does not belong on the {topic} topic"):
        decode_on(topic, value)
    with pytest.raises(DecodeError):
        record_type_on(topic, value)


def test_the_refusal_names_what_the_topic_carries() -> None:
    with pytest.raises(WrongTopicError, match="carries BlockWrite, Marker"):
        check_on(Topic.WRITES, "Extent")


def test_a_wrong_type_is_refused_before_its_body_is_decoded() -> None:
    letter = dead_letter(
        stage="s", reason="r", topic="t", partition=0, offset=0, key=None, value=b"x", volume=None, timestamp=0
    )
    value = default_codec().encode("DeadLetter", letter)
    truncated = value[: len(value) - 3]
    with pytest.raises(WrongTopicError):
        decode_on(Topic.CHANGESETS, truncated)
    with pytest.raises(DecodeError, match="corrupt DeadLetter"):
        decode_on(Topic.DEAD_LETTERS, truncated)


@pytest.mark.parametrize("name", sorted(set(CONSTRUCTORS) - COMPUTED))
@settings(max_examples=10)
@given(data=st.data())
def test_every_record_decodes_on_its_topic_and_is_refused_on_every_other(name: str, data: st.DataObject) -> None:
    arguments = data.draw(constructor_arguments(name))
    if name == "RecoveryPointChunk":
        arguments["last_block"] = arguments["first_block"]
    value = default_codec().encode(name, CONSTRUCTORS[name](**arguments))
    for topic in Topic:
        if name in CARRIES[topic]:
            assert decode_on(topic, value) == (name, arguments)
        else:
            with pytest.raises(WrongTopicError):
                decode_on(topic, value)
