"""Events of one very large change set and its recovery point, generated lazily (no image in
memory): block b holds its index, big-endian, repeated over the block (compresses well, each
block distinct). The shape the processor writes: Extents, ChangeSetSealed, then the point's
RecoveryPointChunk events and its RecoveryPoint header."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lz4.frame
import xxhash
from pyroaring import BitMap

from ...unit.sinks.stream_model import Event

CHUNK_BLOCKS = 65_536


def block_content(block: int, block_size: int) -> bytes:
    return struct.pack(">Q", block) * (block_size // 8)


@dataclass(frozen=True)
class BigPoint:
    volume: str
    block_size: int
    first_block: int
    count: int
    changeset_id: int  # the set that writes the blocks and completes the point
    rp_id: int
    extent_blocks: int = 128

    def changeset(self) -> Iterator[Event]:
        """The Extents (LZ4) and the seal; the seal's digest is folded as the extents go by."""
        bs = self.block_size
        digest = xxhash.xxh3_64()
        index = 0
        for first in range(self.first_block, self.first_block + self.count, self.extent_blocks):
            n = min(self.extent_blocks, self.first_block + self.count - first)
            raw = b"".join(block_content(b, bs) for b in range(first, first + n))
            checksum = xxhash.xxh3_64_digest(raw)
            digest.update(checksum)
            yield "Extent", {
                "volume": self.volume, "changeset_id": self.changeset_id, "index": index,
                "offset": first * bs, "length": n * bs, "op": "WRITE", "compression": "LZ4",
                "data": lz4.frame.compress(raw), "checksum": checksum,
            }  # fmt: skip
            index += 1
        yield "ChangeSetSealed", self._seal(index, digest.digest())

    def _seal(self, extents: int, digest: bytes) -> dict[str, Any]:
        blocks = BitMap(range(self.first_block, self.first_block + self.count))
        return {
            "volume": self.volume, "changeset_id": self.changeset_id, "epoch": 1,
            "seq_first": self.changeset_id, "seq_last": self.changeset_id, "extent_count": extents,
            "block_size": self.block_size, "block_count": self.count, "bytes": self.count * self.block_size,
            "bitmap": blocks.serialize(), "digest": digest, "sealed_at": int(time.time() * 1000),
            "reason": "CUT", "rp_id": self.rp_id,
        }  # fmt: skip

    def manifest(self, volume_size: int) -> Iterator[Event]:
        bs = self.block_size
        end = self.first_block + self.count
        chunks = 0
        for first in range(self.first_block, end, CHUNK_BLOCKS):
            last = min(first + CHUNK_BLOCKS, end) - 1
            checksums = b"".join(xxhash.xxh3_64_digest(block_content(b, bs)) for b in range(first, last + 1))
            yield "RecoveryPointChunk", {
                "volume": self.volume, "rp_id": self.rp_id, "index": chunks, "first_block": first,
                "last_block": last, "bitmap": BitMap(range(first, last + 1)).serialize(), "checksums": checksums,
            }  # fmt: skip
            chunks += 1
        yield "RecoveryPoint", {
            "volume": self.volume, "rp_id": self.rp_id, "seq": self.changeset_id,
            "created_at": int(time.time() * 1000), "kind": "REQUESTED", "label": "big",
            "parent": self.rp_id - 1 if self.rp_id > 1 else None, "block_size": bs,
            "volume_size": volume_size, "block_count": self.count, "chunk_count": chunks,
            "changeset_first": self.changeset_id, "changeset_last": self.changeset_id,
            "changed_bytes": self.count * bs, "cut_bytes": 0, "group": None, "barrier_id": None,
        }  # fmt: skip
