"""Checksum lists in the store and their k-way merge into recovery point chunks."""

from __future__ import annotations

import struct
from array import array

from hypothesis import given
from hypothesis import strategies as st
from pyroaring import BitMap

from tidemark.processors.manifest import (
    CHECKSUM_CHUNK_PAIRS,
    Batch,
    delete_checksums,
    merge_point,
    point_chunks,
    store_batches,
)


def _digest(changeset: int, block: int) -> bytes:
    return struct.pack(">HIH", changeset, block, 0)


def _batch(pairs: list[tuple[int, bytes]]) -> Batch:
    return Batch(array("Q", [b for b, _ in pairs]), array("Q", b"".join(d for _, d in pairs)))


@given(st.lists(st.sets(st.integers(0, 5000), max_size=300), max_size=9), st.integers(1, 700), st.integers(1, 90))
def test_the_merge_keeps_the_newest_checksum_of_every_block_in_chunks(
    sets: list[set[int]], max_blocks: int, round_pairs: int
) -> None:
    store: dict[bytes, bytes] = {}
    model: dict[int, bytes] = {}
    for changeset, changed in enumerate(sets, start=1):
        pairs = [(b, _digest(changeset, b)) for b in sorted(changed)]
        store_batches(store, "v", changeset, [_batch(pairs)] if pairs else [])
        model.update(pairs)
    merged = list(merge_point(store, "v", range(1, len(sets) + 1), round_pairs))
    assert all(len(batch) <= max(round_pairs, len(sets)) for batch in merged), "rounds are bounded"
    chunks = list(point_chunks(merged, max_blocks))
    blocks = [b for chunk in chunks for b in BitMap.deserialize(chunk.bitmap)]
    digests = b"".join(chunk.checksums for chunk in chunks)
    assert blocks == sorted(model)
    assert digests == b"".join(model[b] for b in sorted(model))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.count <= max_blocks and c.first_block == BitMap.deserialize(c.bitmap).min() for c in chunks)
    for changeset in range(1, len(sets) + 1):
        delete_checksums(store, "v", changeset)
    assert store == {}


def test_a_long_list_is_stored_in_bounded_chunks() -> None:
    store: dict[bytes, bytes] = {}
    count = 2 * CHECKSUM_CHUNK_PAIRS + 5
    store_batches(store, "v", 1, [Batch.run(0, b"12345678" * count)])
    assert len(store) == 3
    assert max(len(v) for v in store.values()) == CHECKSUM_CHUNK_PAIRS * 16
    batches = list(merge_point(store, "v", range(1, 2)))
    assert [b for batch in batches for b in batch.blocks] == list(range(count))
    assert b"".join(batch.digests.tobytes() for batch in batches) == b"12345678" * count
