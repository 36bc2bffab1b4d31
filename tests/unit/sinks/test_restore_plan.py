"""The restore's pure planning: point blocks, pending blocks, spans, partly covered blocks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pyroaring import BitMap

from tidemark.sinks.restore.plan import (
    partial_blocks,
    pending_blocks,
    point_blocks,
    ranges_to_blocks,
    spans,
    widened,
)

BS = 4096


@given(st.sets(st.integers(0, 300)), st.integers(0, 300), st.integers(0, 60))
def test_spans_cover_the_range_in_alternating_runs(members: set[int], first: int, extra: int) -> None:
    blocks = BitMap(members)
    last = first + extra
    found = spans(blocks, first, last)
    assert found[0][0] == first and sum(count for _, count, _ in found) == last - first + 1
    for (start, count, inside), following in zip(found, [*found[1:], None], strict=True):
        assert all((block in blocks) == inside for block in range(start, start + count))
        if following is not None:
            assert following[0] == start + count and following[2] != inside


@given(st.integers(0, 10 * BS), st.integers(1, 4 * BS))
def test_partial_blocks_are_the_blocks_not_covered_whole(offset: int, length: int) -> None:
    end = offset + length
    expected = [
        block
        for block in range(offset // BS, (end - 1) // BS + 1)
        if not (offset <= block * BS and (block + 1) * BS <= end)
    ]
    assert sorted(partial_blocks(offset, length, BS)) == expected


def test_point_blocks_are_the_mirror_data_widened_plus_the_changed_blocks() -> None:
    size = 100 * BS
    mirror = [(BS + 10, 2 * BS), (10 * BS, 12 * BS), (99 * BS + 5, 100 * BS)]
    assert ranges_to_blocks(mirror, BS, size) == BitMap([1, 10, 11, 99])
    assert point_blocks(mirror, BitMap([50, 11]), BS, size) == BitMap([1, 10, 11, 50, 99])


def test_pending_blocks_add_stale_destination_blocks_and_skip_relocated_ones() -> None:
    point, stale, relocated = BitMap([1, 2, 3, 4]), BitMap([7]), BitMap([2, 7, 9])
    assert pending_blocks(point, stale, relocated) == BitMap([1, 3, 4])
    assert pending_blocks(point, BitMap([8]), relocated) == BitMap([1, 3, 4, 8])


@given(st.sets(st.integers(0, 5000)), st.integers(1, 300))
def test_widened_covers_the_aligned_groups_of_the_blocks(members: set[int], unit: int) -> None:
    found = widened(BitMap(members), unit)
    assert BitMap(members) <= found
    assert set(found) == {b for m in members for b in range(m // unit * unit, (m // unit + 1) * unit)}
