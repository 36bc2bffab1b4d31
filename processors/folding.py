"""Folding writes into a sub-interval change set, and sealing it into Extent events.

Pure logic, no Kafka: the processor app keeps the open blocks in a table and calls these.
Within a sub-interval, overwrites of a block collapse to the last version; at the seal,
adjacent blocks with the same operation coalesce into extents under the size limit.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import xxhash

OPS = ("WRITE", "ZERO", "TRIM")
_BLOCK_HEADER = struct.Struct(">QB")  # seq (uint64), op index (uint8); then the raw block bytes


@dataclass(frozen=True)
class BlockVersion:
    """The latest version of one block in the open sub-interval."""

    seq: int
    op: str
    data: bytes  # the raw block for WRITE; empty for ZERO/TRIM

    def pack(self) -> bytes:
        return _BLOCK_HEADER.pack(self.seq, OPS.index(self.op)) + self.data

    @classmethod
    def unpack(cls, raw: bytes) -> BlockVersion:
        seq, op = _BLOCK_HEADER.unpack_from(raw)
        return cls(seq, OPS[op], bytes(raw[_BLOCK_HEADER.size :]))


def split_write(offset: int, op: str, data: bytes, length: int, block_size: int, seq: int) -> Iterator[tuple[int, BlockVersion]]:
    """A block-aligned write as (block index, version) pairs."""
    first = offset // block_size
    for i in range(length // block_size):
        chunk = data[i * block_size : (i + 1) * block_size] if op == "WRITE" else b""
        yield first + i, BlockVersion(seq, op, chunk)


def block_checksum(version: BlockVersion, zero_block_digest: bytes) -> bytes:
    return xxhash.xxh3_64_digest(version.data) if version.op == "WRITE" else zero_block_digest


@dataclass(frozen=True)
class SealedExtent:
    index: int
    offset: int
    length: int
    op: str
    data: bytes  # raw, uncompressed
    checksum: bytes


def seal_extents(
    blocks: Iterable[int], version_of: Callable[[int], BlockVersion], block_size: int, max_bytes: int
) -> Iterator[SealedExtent]:
    """Coalesce sorted dirty blocks into extents: adjacent, same op, at most `max_bytes` each."""
    max_blocks = max(1, max_bytes // block_size)
    run_first = -1
    run_op = ""
    run_data: list[bytes] = []
    run_len = 0
    index = 0

    def flush() -> SealedExtent:
        data = b"".join(run_data) if run_op == "WRITE" else b""
        length = run_len * block_size
        raw = data if run_op == "WRITE" else bytes(length)
        return SealedExtent(index, run_first * block_size, length, run_op, data, xxhash.xxh3_64_digest(raw))

    for block in blocks:
        version = version_of(block)
        contiguous = run_len and block == run_first + run_len and version.op == run_op and run_len < max_blocks
        if run_len and not contiguous:
            yield flush()
            index += 1
            run_len = 0
            run_data = []
        if not run_len:
            run_first, run_op = block, version.op
        run_data.append(version.data)
        run_len += 1
    if run_len:
        yield flush()


def changeset_digest(checksums: Iterable[bytes]) -> bytes:
    return xxhash.xxh3_64_digest(b"".join(checksums))


_PAIR = struct.Struct(">Q8s")  # block index, xxh3-64 digest


def pack_checksums(pairs: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(_PAIR.pack(block, digest) for block, digest in pairs)


def unpack_checksums(raw: bytes) -> Iterator[tuple[int, bytes]]:
    for offset in range(0, len(raw), _PAIR.size):
        yield _PAIR.unpack_from(raw, offset)


def merge_checksums(per_changeset: Iterable[bytes]) -> dict[int, bytes]:
    """Later change sets win: the block's checksum at the recovery point."""
    merged: dict[int, bytes] = {}
    for raw in per_changeset:
        merged.update(unpack_checksums(raw))
    return merged
