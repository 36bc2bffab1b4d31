"""Where a read of a topic stops (kafka_ends), without Kafka: messages with gaps (compaction,
transaction markers), positions past a marker, end-of-file events, and the backwards windows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidemark.core.kafka_ends import ReadEnds, tail_windows


@st.composite
def partition_logs(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    """(start, end, offsets present in the log): a strictly increasing offset list with gaps."""
    offsets = sorted(draw(st.sets(st.integers(0, 200), max_size=60)))
    start = draw(st.integers(0, 210))
    end = draw(st.integers(0, 220))
    return start, end, offsets


@given(partition_logs())
def test_exactly_the_messages_in_range_are_taken_and_the_read_ends_after_the_last(
    log: tuple[int, int, list[int]],
) -> None:
    start, end, offsets = log
    read = ReadEnds.of({0: start}, {0: end})
    taken = []
    for offset in (o for o in offsets if o >= start):
        if read.done:
            break
        if read.take(0, offset):
            taken.append(offset)
    assert taken == [o for o in offsets if start <= o < end]
    in_range = [o for o in offsets if start <= o < end]
    if start >= end or (in_range and in_range[-1] == end - 1) or any(o >= end for o in offsets if o >= start):
        assert read.done
    else:  # the range's last offsets are missing (a marker, a compacted record): only the position tells
        assert not read.done
        read.advance(0, end)
        assert read.done


def test_an_empty_range_is_done_at_once() -> None:
    read = ReadEnds.of({0: 5, 1: 0, 2: 3}, {0: 5, 1: 0, 2: 9})
    assert read.open == [2]
    assert not read.take(0, 5)


def test_a_marker_at_the_end_closes_the_partition_by_its_position() -> None:
    read = ReadEnds.of({0: 0}, {0: 4})  # offsets 0..2 data, 3 a commit marker
    assert [read.take(0, o) for o in range(3)] == [True, True, True]
    assert not read.done
    assert not read.advance(0, 2), "a position behind the read is no progress"
    assert read.advance(0, 4)
    assert read.done


def test_the_end_of_file_closes_a_partition_whose_end_never_comes() -> None:
    read = ReadEnds.of({0: 0, 1: 0}, {0: 100, 1: 2})
    read.reached_eof(0)
    assert read.open == [1]
    assert not read.take(0, 7), "a closed partition hands nothing on"
    assert read.take(1, 1)
    assert read.done


def test_progress_is_per_partition() -> None:
    read = ReadEnds.of({0: 0, 1: 10}, {0: 3, 1: 12})
    assert read.take(1, 10)
    assert read.positions == {0: 0, 1: 11}
    assert read.take(0, 2)
    assert read.open == [1]


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 600), st.integers(1, 5))
def test_tail_windows_cover_the_range_newest_first_without_overlap(
    low: int, span: int, first: int, growth: int
) -> None:
    high = low + span
    windows = list(tail_windows(low, high, first, growth))
    covered = [offset for start, end in reversed(windows) for offset in range(start, end)]
    assert covered == list(range(low, high))
    assert all(start < end for start, end in windows)
    if windows:
        assert windows[0] == (max(low, high - first), high)
    for (_, older_end), (newer_start, _) in zip(windows[1:], windows, strict=False):
        assert older_end == newer_start


def test_tail_windows_grow() -> None:
    assert list(tail_windows(0, 1000, 10)) == [(990, 1000), (950, 990), (790, 950), (150, 790), (0, 150)]
    with pytest.raises(ValueError, match="first >= 1"):
        list(tail_windows(0, 10, 0))
