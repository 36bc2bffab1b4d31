"""Block checksums from change sets to recovery points, streamed in bounded memory.

At every seal the change set's (block, xxh3-64) pairs are kept in the state store, in chunks of
at most `CHECKSUM_CHUNK_PAIRS` pairs (`PAIR` layout below), ascending block. A recovery point
merges the lists of its change sets (a later change set wins for a block it shares with an
earlier one) with a k-way merge that holds one chunk per change set, and cuts the result into
`PointChunk`s of at most `POINT_CHUNK_BLOCKS` blocks: the RecoveryPointChunk events. No step
holds the whole point, whatever its size.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass

from pyroaring import BitMap

from .state_keys import checksums_key

PAIR = struct.Struct(">Q8s")
"""One stored pair: block index (u64 big-endian), then its xxh3-64 digest (8 bytes)."""

CHECKSUM_CHUNK_PAIRS = 32_768
"""Pairs per stored chunk: 512 KiB, so no state value comes near a message size limit."""

POINT_CHUNK_BLOCKS = 65_536
"""Blocks per RecoveryPointChunk (schemas/RecoveryPointChunk.avsc): bitmap + 512 KiB of checksums."""


def store_checksums(
    store: MutableMapping[bytes, bytes], volume: str, changeset: int, pairs: Iterable[tuple[int, bytes]]
) -> int:
    """Keep a change set's pairs (ascending block) as chunks; returns the chunks written."""
    chunk = 0
    buffer = bytearray()
    for block, digest in pairs:
        buffer += PAIR.pack(block, digest)
        if len(buffer) == CHECKSUM_CHUNK_PAIRS * PAIR.size:
            store[checksums_key(volume, changeset, chunk)] = bytes(buffer)
            chunk += 1
            buffer.clear()
    if buffer:
        store[checksums_key(volume, changeset, chunk)] = bytes(buffer)
        chunk += 1
    return chunk


def iter_checksums(store: MutableMapping[bytes, bytes], volume: str, changeset: int) -> Iterator[tuple[int, bytes]]:
    """A change set's pairs in ascending block order, one stored chunk in memory at a time."""
    chunk = 0
    while (raw := store.get(checksums_key(volume, changeset, chunk))) is not None:
        yield from PAIR.iter_unpack(raw)
        chunk += 1


def delete_checksums(store: MutableMapping[bytes, bytes], volume: str, changeset: int) -> None:
    chunk = 0
    while (key := checksums_key(volume, changeset, chunk)) in store:
        del store[key]
        chunk += 1


def merge_checksums(per_changeset: Iterable[Iterator[tuple[int, bytes]]]) -> Iterator[tuple[int, bytes]]:
    """K-way merge of ascending pair streams, given oldest first: each block once, newest wins."""
    ranked = [_ranked(stream, -rank) for rank, stream in enumerate(per_changeset)]
    last = -1
    for block, _rank, digest in heapq.merge(*ranked):
        if block != last:  # the newest stream sorts first among equal blocks
            last = block
            yield block, digest


def _ranked(stream: Iterator[tuple[int, bytes]], rank: int) -> Iterator[tuple[int, int, bytes]]:
    for block, digest in stream:
        yield block, rank, digest


@dataclass(frozen=True)
class PointChunk:
    index: int
    first_block: int
    last_block: int
    count: int
    bitmap: bytes  # portable roaring bitmap of absolute block indexes
    checksums: bytes  # 8 bytes per block, ascending


def point_chunks(pairs: Iterable[tuple[int, bytes]], max_blocks: int = POINT_CHUNK_BLOCKS) -> Iterator[PointChunk]:
    """Cut an ascending pair stream into chunks of at most `max_blocks` blocks."""
    index = 0
    blocks: list[int] = []
    digests: list[bytes] = []

    def chunk() -> PointChunk:
        bitmap = BitMap(blocks)
        bitmap.run_optimize()
        return PointChunk(index, blocks[0], blocks[-1], len(blocks), bitmap.serialize(), b"".join(digests))

    for block, digest in pairs:
        blocks.append(block)
        digests.append(digest)
        if len(blocks) == max_blocks:
            yield chunk()
            index += 1
            blocks, digests = [], []
    if blocks:
        yield chunk()
