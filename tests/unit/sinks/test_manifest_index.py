"""The manifest contract without Kafka: header index, chunk checks, chunk sequences."""

from __future__ import annotations

from typing import Any

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from tidemark.sinks.exceptions import ManifestError
from tidemark.sinks.reading.manifest_index import ChunkSequence, HeaderIndex, chunk_of

from .harness import wire
from .stream_model import StreamModel

BS = 512


def _point(blocks: list[int], chunk_blocks: int) -> list[tuple[str, dict[str, Any]]]:
    model = StreamModel("vol", 4096 * BS, block_size=BS)
    for block in blocks:
        model.write(block * BS, bytes([block % 251 + 1]) * BS)
    model.seal(cut=True)
    return wire(model.manifest(chunk_blocks=chunk_blocks))


@settings(max_examples=40, deadline=None)
@given(blocks=st.sets(st.integers(0, 4095), min_size=1, max_size=300), chunk_blocks=st.integers(1, 70))
def test_chunks_of_any_split_rebuild_the_point(blocks: set[int], chunk_blocks: int) -> None:
    events = _point(sorted(blocks), chunk_blocks)
    header = events[-1][1]
    sequence = ChunkSequence("vol", header)
    union = BitMap()
    for offset, (_, record) in enumerate(events[:-1]):
        chunk = sequence.accept(chunk_of(record), offset)
        assert len(chunk.bitmap) <= chunk_blocks
        for position, block in enumerate(chunk.bitmap):
            assert chunk.checksum(position) == xxhash.xxh3_64_digest(bytes([block % 251 + 1]) * BS)
        union |= chunk.bitmap
    sequence.finish()
    assert union == BitMap(blocks) and header["block_count"] == len(blocks)


def test_a_missing_chunk_is_an_error() -> None:
    events = _point(list(range(10)), 3)
    sequence = ChunkSequence("vol", events[-1][1])
    sequence.accept(chunk_of(events[0][1]), 0)
    with pytest.raises(ManifestError, match="chunk 2 arrived where chunk 1 was due"):
        sequence.accept(chunk_of(events[2][1]), 2)


def test_a_short_point_is_an_error() -> None:
    events = _point(list(range(10)), 3)
    sequence = ChunkSequence("vol", events[-1][1])
    for offset, (_, record) in enumerate(events[:-2]):
        sequence.accept(chunk_of(record), offset)
    with pytest.raises(ManifestError, match="3 chunks with 9 blocks arrived, the header declares 4 chunks with 10"):
        sequence.finish()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"checksums": b"x" * 7}, "7 checksum bytes for 3 blocks"),
        ({"first_block": 1}, r"outside \[1, 2\]"),
        ({"bitmap": b"not a bitmap"}, "not a portable roaring bitmap"),
    ],
)
def test_inconsistent_chunks_are_refused(change: dict[str, Any], message: str) -> None:
    record = _point([0, 1, 2], 3)[0][1] | change
    with pytest.raises(ManifestError, match=message):
        chunk_of(record)


def test_header_index_bounds_each_point_by_the_previous_header() -> None:
    index = HeaderIndex("vol", 2, 0)
    index.header(5, {"volume": "vol", "rp_id": 1})
    index.header(7, {"volume": "other", "rp_id": 9})
    index.header(12, {"volume": "vol", "rp_id": 2})
    points = index.sorted_points()
    assert [(p.rp_id, p.partition, p.start_offset, p.header_offset) for p in points.values()] == [
        (1, 2, 0, 5),
        (2, 2, 6, 12),
    ]
