"""The tracker's seq checkpoints without Kafka: the value round-trips, junk is ignored, and the
writer publishes the latest confirmed place at most once per interval."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidemark.producers.seq_checkpoint import (
    Checkpoint,
    CheckpointWriter,
    decode_checkpoint,
    encode_checkpoint,
)

naturals = st.integers(min_value=0, max_value=2**62)


@given(naturals, naturals, st.integers(min_value=-1, max_value=2**62))
def test_a_checkpoint_round_trips(partition: int, offset: int, seq: int) -> None:
    checkpoint = Checkpoint(partition, offset, seq)
    assert decode_checkpoint(encode_checkpoint(checkpoint)) == checkpoint


@given(st.binary(max_size=64))
def test_junk_is_no_checkpoint_and_never_raises(value: bytes) -> None:
    decoded = decode_checkpoint(value)
    assert decoded is None or decoded.offset >= 0


def test_tombstones_and_wrong_fields_are_no_checkpoint() -> None:
    assert decode_checkpoint(None) is None
    assert decode_checkpoint(b'{"partition": 0, "offset": 5}') is None
    assert decode_checkpoint(b'{"partition": 0, "offset": -5, "seq": 1}') is None
    assert decode_checkpoint(b'{"partition": 0, "offset": 5, "seq": "7"}') is None
    assert decode_checkpoint(b'{"partition": 0, "offset": 5, "seq": true}') is None


def test_the_writer_publishes_the_latest_place_at_most_once_per_interval() -> None:
    writer = CheckpointWriter(interval=1.0)
    assert writer.due(0.0, 3) is None, "nothing confirmed yet"
    writer.delivered(100, 7)
    writer.delivered(90, 6)  # reports of one batch may come in any order
    assert writer.due(0.0, 3) == Checkpoint(3, 100, 7)
    writer.delivered(120, 9)
    assert writer.due(0.5, 3) is None, "too soon"
    assert writer.due(1.0, 3) == Checkpoint(3, 120, 9)
    assert writer.due(5.0, 3) is None, "nothing new"


@given(st.lists(st.tuples(naturals, naturals), min_size=1))
def test_the_published_place_is_the_highest_offset_confirmed(places: list[tuple[int, int]]) -> None:
    writer = CheckpointWriter(interval=0.0)
    for offset, seq in places:
        writer.delivered(offset, seq)
    published = writer.due(0.0, 0)
    assert published is not None and (published.offset, published.seq) == max(places)
