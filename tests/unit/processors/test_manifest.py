"""Checksum lists in the store and their k-way merge into recovery point chunks."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from pyroaring import BitMap

from tidemark.processors.manifest import (
    CHECKSUM_CHUNK_PAIRS,
    delete_checksums,
    iter_checksums,
    merge_checksums,
    point_chunks,
    store_checksums,
)

changesets = st.lists(st.sets(st.integers(0, 5000), max_size=300), max_size=6)


def _digest(changeset: int, block: int) -> bytes:
    return struct.pack(">HIH", changeset, block, 0)


@given(changesets, st.integers(1, 700))
def test_the_merge_keeps_the_newest_checksum_of_every_block_in_chunks(sets: list[set[int]], max_blocks: int) -> None:
    store: dict[bytes, bytes] = {}
    model: dict[int, bytes] = {}
    for changeset, changed in enumerate(sets, start=1):
        pairs = [(b, _digest(changeset, b)) for b in sorted(changed)]
        store_checksums(store, "v", changeset, pairs)
        model.update(pairs)
    merged = merge_checksums(iter_checksums(store, "v", c) for c in range(1, len(sets) + 1))
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
    assert store_checksums(store, "v", 1, ((b, b"12345678") for b in range(count))) == 3
    assert max(len(v) for v in store.values()) == CHECKSUM_CHUNK_PAIRS * 16
    assert [b for b, _ in iter_checksums(store, "v", 1)] == list(range(count))
