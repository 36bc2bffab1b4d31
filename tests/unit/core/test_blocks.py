"""Properties of the extent arithmetic every stage relies on."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidemark.core.blocks import Extent, align_out, block_range, is_aligned, runs, runs_limited, split

block_sizes = st.sampled_from([512, 4096, 65536])
offsets = st.integers(min_value=0, max_value=1 << 40)
lengths = st.integers(min_value=1, max_value=1 << 24)


@given(offsets, lengths, block_sizes)
def test_align_out_covers_the_range_with_the_fewest_blocks(offset: int, length: int, block_size: int) -> None:
    extent = align_out(offset, length, block_size)
    assert is_aligned(extent.offset, extent.length, block_size)
    assert extent.offset <= offset and extent.end >= offset + length
    assert extent.offset > offset - block_size
    assert extent.end < offset + length + block_size


@given(offsets, lengths, block_sizes)
def test_align_out_is_identity_on_aligned_extents(offset: int, length: int, block_size: int) -> None:
    start, size = offset - offset % block_size, max(block_size, length - length % block_size)
    assert align_out(start, size, block_size) == Extent(start, size)


@given(offsets, lengths, block_sizes)
def test_block_range_is_exactly_the_blocks_touched(offset: int, length: int, block_size: int) -> None:
    blocks = block_range(offset, length, block_size)
    assert blocks.start == offset // block_size
    assert blocks.stop - 1 == (offset + length - 1) // block_size
    extent = align_out(offset, length, block_size)
    assert len(blocks) * block_size == extent.length


@given(offsets, st.integers(max_value=0), block_sizes)
def test_block_range_of_an_empty_range_is_empty(offset: int, length: int, block_size: int) -> None:
    assert len(block_range(offset, length, block_size)) == 0


@given(offsets, st.integers(min_value=0, max_value=1 << 20), st.integers(min_value=1 << 10, max_value=1 << 18))
def test_split_tiles_the_extent_in_order_under_the_limit(offset: int, length: int, max_length: int) -> None:
    pieces = list(split(offset, length, max_length))
    assert sum(p.length for p in pieces) == length
    assert all(0 < p.length <= max_length for p in pieces)
    position = offset
    for piece in pieces:
        assert piece.offset == position
        position = piece.end
    assert all(p.length == max_length for p in pieces[:-1])


@pytest.mark.parametrize("max_length", [0, -1])
def test_split_refuses_a_non_positive_limit(max_length: int) -> None:
    with pytest.raises(ValueError):
        list(split(0, 10, max_length))


@given(st.sets(st.integers(min_value=0, max_value=2000), max_size=200))
def test_runs_round_trip_to_the_same_blocks(blocks: set[int]) -> None:
    found = list(runs(sorted(blocks)))
    expanded = [b for first, count in found for b in range(first, first + count)]
    assert expanded == sorted(blocks)
    for (first, count), (next_first, _) in pairwise(found):
        assert first + count < next_first, "adjacent runs must have been merged"


@given(st.sets(st.integers(min_value=0, max_value=2000), max_size=200), st.integers(min_value=1, max_value=64))
def test_runs_limited_caps_every_run(blocks: set[int], max_blocks: int) -> None:
    found = list(runs_limited(sorted(blocks), max_blocks))
    assert all(0 < count <= max_blocks for _, count in found)
    expanded = [b for first, count in found for b in range(first, first + count)]
    assert expanded == sorted(blocks)


def test_runs_of_nothing_is_nothing() -> None:
    assert list(runs([])) == []
    assert list(runs_limited([], 4)) == []


def test_extent_end() -> None:
    assert Extent(4096, 8192).end == 12288
