"""Builds change-set stream events the way the contract describes, for the sink tests.

`StreamModel` folds (offset, bytes) writes of one volume into `Extent` + `ChangeSetSealed` events
(and chunked `RecoveryPoint` manifests at cuts) and keeps the expected image, so a test can compare a
mirror with what it must hold at every recovery point without running the processor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import lz4.frame
import xxhash
import zstandard
from pyroaring import BitMap

from tidemark.core.blocks import runs_limited

Event = tuple[str, dict[str, Any]]


def _compress(kind: str, raw: bytes) -> bytes:
    if kind == "LZ4":
        return lz4.frame.compress(raw)
    if kind == "ZSTD":
        return zstandard.ZstdCompressor().compress(raw)
    return raw


@dataclass
class StreamModel:
    volume: str
    size: int
    block_size: int = 4096
    extent_bytes: int = 64 * 1024
    compression: str = "NONE"
    image: bytearray = field(init=False)
    changeset_id: int = 0
    seq: int = 0
    rp_id: int = 0
    generation: int = 0  # the primary generation the next seals carry
    points: dict[int, bytes] = field(default_factory=dict)  # rp_id -> the image at that point
    _open: dict[int, bytes | None] = field(default_factory=dict)  # block -> content; None = zeros
    _since_rp: set[int] = field(default_factory=set)
    _seq_first: int = 1

    def __post_init__(self) -> None:
        self.image = bytearray(self.size)

    def write(self, offset: int, data: bytes) -> None:
        """A block-aligned write."""
        bs = self.block_size
        assert offset % bs == 0 and len(data) % bs == 0 and offset + len(data) <= self.size
        self.seq += 1
        self.image[offset : offset + len(data)] = data
        for i in range(len(data) // bs):
            self._open[offset // bs + i] = bytes(data[i * bs : (i + 1) * bs])

    def zero(self, offset: int, length: int) -> None:
        bs = self.block_size
        self.seq += 1
        self.image[offset : offset + length] = bytes(length)
        for block in range(offset // bs, (offset + length) // bs):
            self._open[block] = None

    def seal(self, cut: bool = False) -> list[Event]:
        """Close the open change set; with `cut` it completes a new recovery point."""
        self.changeset_id += 1
        blocks = sorted(self._open)
        extents = list(self._extents(blocks))
        checksums = b"".join(e["checksum"] for e in extents)
        rp = None
        if cut:
            self.rp_id += 1
            rp = self.rp_id
        seal = {
            "volume": self.volume, "changeset_id": self.changeset_id, "epoch": 1,
            "seq_first": self._seq_first, "seq_last": self.seq, "extent_count": len(extents),
            "block_size": self.block_size, "block_count": len(blocks),
            "bytes": len(blocks) * self.block_size, "bitmap": BitMap(blocks).serialize(),
            "digest": xxhash.xxh3_64_digest(checksums), "sealed_at": int(time.time() * 1000),
            "reason": "CUT" if cut else "INTERVAL", "rp_id": rp, "generation": self.generation,
        }  # fmt: skip
        self._since_rp.update(blocks)
        self._open.clear()
        self._seq_first = self.seq + 1
        if rp is not None:
            self.points[rp] = bytes(self.image)
        return [*(("Extent", e) for e in extents), ("ChangeSetSealed", seal)]

    def manifest(self, kind: str = "PERIODIC", label: str | None = None, chunk_blocks: int = 65_536) -> list[Event]:
        """The manifest of the point the last `seal(cut=True)` completed, as the processor writes it:
        RecoveryPointChunk events (at most `chunk_blocks` blocks each), then the RecoveryPoint header."""
        blocks = sorted(self._since_rp)
        bs = self.block_size
        image = self.points[self.rp_id]
        self._since_rp.clear()
        chunks: list[Event] = []
        for start in range(0, len(blocks), chunk_blocks):
            part = blocks[start : start + chunk_blocks]
            checksums = b"".join(xxhash.xxh3_64_digest(image[b * bs : (b + 1) * bs]) for b in part)
            chunks.append(("RecoveryPointChunk", {
                "volume": self.volume, "rp_id": self.rp_id, "index": len(chunks), "first_block": part[0],
                "last_block": part[-1], "bitmap": BitMap(part).serialize(), "checksums": checksums,
            }))  # fmt: skip
        header = {
            "volume": self.volume, "rp_id": self.rp_id, "seq": self.seq,
            "created_at": int(time.time() * 1000), "kind": kind, "label": label,
            "parent": self.rp_id - 1 if self.rp_id > 1 else None, "block_size": bs,
            "volume_size": self.size, "block_count": len(blocks), "chunk_count": len(chunks),
            "changeset_first": None, "changeset_last": self.changeset_id,
            "changed_bytes": len(blocks) * bs, "cut_bytes": 0, "group": None, "barrier_id": None,
        }  # fmt: skip
        return [*chunks, ("RecoveryPoint", header)]

    def _extents(self, blocks: list[int]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        bs = self.block_size
        groups: list[tuple[bool, list[int]]] = []
        for block in blocks:
            is_zero = self._open[block] is None
            if groups and groups[-1][0] == is_zero and groups[-1][1][-1] == block - 1:
                groups[-1][1].append(block)
            else:
                groups.append((is_zero, [block]))
        for is_zero, run in groups:
            for first, count in runs_limited(run, max(1, self.extent_bytes // bs)):
                offset, length = first * bs, count * bs
                if is_zero:
                    op, data, checksum, compression = "ZERO", b"", bytes(8), "NONE"
                else:
                    raw = b"".join(self._open[b] or b"" for b in range(first, first + count))
                    op, checksum, compression = "WRITE", xxhash.xxh3_64_digest(raw), self.compression
                    data = _compress(compression, raw)
                out.append({
                    "volume": self.volume, "changeset_id": self.changeset_id, "index": len(out),
                    "offset": offset, "length": length, "op": op, "compression": compression,
                    "data": data, "checksum": checksum,
                })  # fmt: skip
        return out
