"""`tidemark verify`: compare a mirror, block by block (xxh3-64), with a source or with manifests.

Against a source every block is compared. Against recovery point j, the blocks named by the
manifests of j and its ancestors are compared with the checksum of the newest manifest naming
them (with `changed_only`, only j's own manifest): the cost follows the blocks changed, and the
chunks of each manifest are streamed (see sinks/manifests.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import xxhash
from pyroaring import BitMap

from tidemark.core.blocks import runs
from tidemark.core.image_io import pread_full
from tidemark.core.progress import OnProgress

from .exceptions import SinkError
from .reading.manifest_index import Chunk

CHUNK_BYTES = 1 << 20


class BlockReader(Protocol):
    size: int

    def read(self, offset: int, length: int) -> bytes: ...


@dataclass
class VerifyReport:
    reference: str
    block_size: int
    blocks_checked: int = 0
    differing_blocks: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differing_blocks

    def extents(self) -> list[tuple[int, int]]:
        """Differing byte ranges `(offset, length)`, adjacent blocks coalesced."""
        bs = self.block_size
        return [(first * bs, count * bs) for first, count in runs(sorted(self.differing_blocks))]


def _digests(data: bytes, block_size: int) -> list[bytes]:
    view = memoryview(data)
    return [xxhash.xxh3_64_digest(view[i : i + block_size]) for i in range(0, len(data), block_size)]


def against_source(
    mirror: BlockReader, source: Path, block_size: int, on_progress: OnProgress | None = None
) -> VerifyReport:
    size = os.path.getsize(source)
    if size != mirror.size:
        raise SinkError(f"source {source} is {size} bytes but the mirror is {mirror.size} bytes")
    report = VerifyReport(f"source {source}", block_size)
    total = size // block_size
    with open(source, "rb") as handle:
        for offset in range(0, size, CHUNK_BYTES):
            length = min(CHUNK_BYTES, size - offset)
            theirs = _digests(pread_full(handle.fileno(), length, offset, source), block_size)
            ours = _digests(mirror.read(offset, length), block_size)
            first = offset // block_size
            report.differing_blocks += [first + i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
            report.blocks_checked += len(ours)
            if on_progress is not None:
                on_progress(report.blocks_checked, total)
    return report


def manifest_chain(
    headers: dict[int, dict[str, Any]], rp_id: int, changed_only: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """The headers of rp_id and its ancestors, newest first, and notes on what is missing."""
    chain: list[dict[str, Any]] = []
    notes: list[str] = []
    current: int | None = rp_id
    while current is not None:
        found = headers.get(current)
        if found is None:
            notes.append(
                f"manifest of recovery point {current} is no longer in the topic: blocks changed "
                f"only before it are not checked"
            )
            break
        chain.append(found)
        if changed_only:
            break
        current = found["parent"]
    return chain, notes


def against_manifests(
    read_block: Callable[[int], bytes],
    chain: Iterable[tuple[dict[str, Any], Iterable[Chunk]]],
    block_size: int,
    on_progress: OnProgress | None = None,
) -> VerifyReport:
    """Compare each block with the checksum of the newest manifest naming it.

    `chain`: (header, its chunks) newest first; the chunks are streamed, one in memory at a time.
    Memory: a roaring bitmap of the blocks already checked, and the differing blocks.
    """
    chain = list(chain)
    report = VerifyReport(f"recovery point {chain[0][0]['rp_id']} manifests" if chain else "no manifests", block_size)
    seen = BitMap()
    total = sum(header["block_count"] for header, _ in chain)
    for _, chunks in chain:
        for chunk in chunks:
            for position, block in enumerate(chunk.bitmap):
                if block in seen:
                    continue
                if xxhash.xxh3_64_digest(read_block(block)) != chunk.checksum(position):
                    report.differing_blocks.append(block)
                report.blocks_checked += 1
                if on_progress is not None and report.blocks_checked % 4096 == 0:
                    on_progress(report.blocks_checked, total)
            seen |= chunk.bitmap
    if on_progress is not None:
        on_progress(report.blocks_checked, report.blocks_checked)
    return report
