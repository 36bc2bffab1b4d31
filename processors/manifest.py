"""Block checksums from change sets to recovery points, streamed in bounded memory.

At every seal the change set's (block, xxh3-64) pairs are kept in the state store, in chunks of
at most `CHECKSUM_CHUNK_PAIRS` pairs (`PAIR` layout below), ascending block. A recovery point
merges the lists of its change sets (a later change set wins for a block it shares with an
earlier one) in rounds that hold only the chunks overlapping the round, and cuts the result into
`PointChunk`s of at most `POINT_CHUNK_BLOCKS` blocks: the RecoveryPointChunk events. No step
holds the whole point, whatever its size.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass

from pyroaring import BitMap

from .state_keys import checksums_key

PAIR = struct.Struct(">Q8s")
"""One stored pair: block index (u64 big-endian), then its xxh3-64 digest (8 bytes)."""

CHECKSUM_CHUNK_PAIRS = 32_768
"""Pairs per stored chunk: 512 KiB, so no state value comes near a message size limit."""

ROUND_PAIRS = 65_536
"""Pairs one merge round holds at most."""

POINT_CHUNK_BLOCKS = 65_536
"""Blocks per RecoveryPointChunk (schemas/RecoveryPointChunk.avsc): bitmap + 512 KiB of checksums."""


@dataclass(frozen=True)
class Batch:
    """Pairs in columns, ascending block: block indexes, and the digests as native 8-byte words
    (`digests.tobytes()` gives back the digests' bytes unchanged)."""

    blocks: array[int]
    digests: array[int]

    @classmethod
    def run(cls, first: int, digests: bytes) -> Batch:
        """Consecutive blocks from `first`, with their digests packed 8 bytes each."""
        return cls(array("Q", range(first, first + len(digests) // 8)), array("Q", digests))

    def __len__(self) -> int:
        return len(self.blocks)


def _batch(raw: bytes) -> Batch:
    words = array("Q", raw)
    blocks = words[0::2]
    if sys.byteorder == "little":
        blocks.byteswap()  # stored big-endian
    return Batch(blocks, words[1::2])


def store_batches(store: MutableMapping[bytes, bytes], volume: str, changeset: int, batches: Iterable[Batch]) -> None:
    """Keep a change set's pairs, ascending block, as chunks of PAIR."""
    for chunk, part in enumerate(rechunk(batches, CHECKSUM_CHUNK_PAIRS)):
        words = array("Q", bytes(PAIR.size * len(part)))
        blocks = array("Q", part.blocks)
        if sys.byteorder == "little":
            blocks.byteswap()
        words[0::2] = blocks
        words[1::2] = part.digests
        store[checksums_key(volume, changeset, chunk)] = words.tobytes()


def merge_point(
    store: MutableMapping[bytes, bytes], volume: str, changesets: range, round_pairs: int = ROUND_PAIRS
) -> Iterator[Batch]:
    """The point's pairs over `changesets` (oldest first), newest digest per block, ascending."""
    return merge_checksums([_Cursor(store, volume, c) for c in changesets], round_pairs)


def delete_checksums(store: MutableMapping[bytes, bytes], volume: str, changeset: int) -> None:
    chunk = 0
    while (key := checksums_key(volume, changeset, chunk)) in store:
        del store[key]
        chunk += 1


class _Cursor:
    """Where the merge is in one change set's list. It holds its current chunk only while the
    merge needs it; otherwise just the first and last block left in it."""

    def __init__(self, store: MutableMapping[bytes, bytes], volume: str, changeset: int) -> None:
        self.store, self.volume, self.changeset = store, volume, changeset
        self.chunk = -1
        self.start = 0
        self.first = self.last = -1
        self.batch: Batch | None = None
        self.advance()

    @property
    def done(self) -> bool:
        return self.first < 0

    def advance(self) -> None:
        """Go to the next stored chunk; note its range, and let its data go until needed."""
        self.chunk += 1
        self.start = 0
        self.batch = None
        batch = self.load()
        self.first, self.last = (batch.blocks[0], batch.blocks[-1]) if batch else (-1, -1)
        self.batch = None

    def load(self) -> Batch | None:
        if self.batch is None:
            raw = self.store.get(checksums_key(self.volume, self.changeset, self.chunk))
            self.batch = _batch(raw) if raw is not None else None
        return self.batch

    def reach(self, pairs: int) -> int:
        """The block `pairs` pairs ahead (or the chunk's last one)."""
        batch = self.load()
        assert batch is not None
        return batch.blocks[min(self.start + pairs, len(batch)) - 1]

    def take(self, bound: int) -> tuple[array[int], array[int]]:
        """The pairs up to `bound` (this cursor's first block is at most `bound`)."""
        batch = self.load()
        assert batch is not None
        end = bisect_right(batch.blocks, bound, lo=self.start)
        taken = batch.blocks[self.start : end], batch.digests[self.start : end]
        if end == len(batch):
            self.advance()
        else:
            self.start, self.first = end, batch.blocks[end]
        return taken


def merge_checksums(cursors: list[_Cursor], round_pairs: int) -> Iterator[Batch]:
    """Merge the lists, given oldest first: each block once, the newest digest wins.

    Each round takes, from every list whose next block is in range, the pairs up to a bound: at
    most the lowest last block among the lists' current chunks (no list holds a smaller block
    later), and low enough that the round holds at most `round_pairs` pairs. It folds them oldest
    first into a dict (newer overwrites) and yields them sorted. Memory: the chunks of the lists
    that overlap at the bound (one chunk for change sets written in disjoint ranges, as a seed
    is), plus one round.
    """
    while live := [cursor for cursor in cursors if not cursor.done]:
        bound = min(cursor.last for cursor in live)
        active = [cursor for cursor in live if cursor.first <= bound]
        step = max(1, round_pairs // len(active))
        bound = min(bound, *(cursor.reach(step) for cursor in active))
        merged: dict[int, int] = {}
        for cursor in active:
            if cursor.first <= bound:
                merged.update(zip(*cursor.take(bound), strict=True))
        blocks = array("Q", sorted(merged))
        yield Batch(blocks, array("Q", map(merged.__getitem__, blocks)))


@dataclass(frozen=True)
class PointChunk:
    index: int
    first_block: int
    last_block: int
    count: int
    bitmap: bytes  # portable roaring bitmap of absolute block indexes
    checksums: bytes  # 8 bytes per block, ascending


def rechunk(batches: Iterable[Batch], size: int) -> Iterator[Batch]:
    """The same pairs in batches of exactly `size` (the last one may be shorter)."""
    blocks: array[int] = array("Q")
    digests: array[int] = array("Q")
    for batch in batches:
        blocks.extend(batch.blocks)
        digests.extend(batch.digests)
        while len(blocks) >= size:
            yield Batch(blocks[:size], digests[:size])
            del blocks[:size], digests[:size]
    if blocks:
        yield Batch(blocks, digests)


def point_chunks(batches: Iterable[Batch], max_blocks: int = POINT_CHUNK_BLOCKS) -> Iterator[PointChunk]:
    """Cut an ascending batch stream into chunks of at most `max_blocks` blocks."""
    for index, part in enumerate(rechunk(batches, max_blocks)):
        bitmap = BitMap(array("I", part.blocks))  # roaring: 32-bit block indexes
        bitmap.run_optimize()
        yield PointChunk(index, part.blocks[0], part.blocks[-1], len(part), bitmap.serialize(), part.digests.tobytes())
