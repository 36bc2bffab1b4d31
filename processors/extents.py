"""Sealing: the open sub-interval's dirty blocks, read back from their writes, as Extent events.

Pure logic, no Kafka. Input: the runs of `BlockRefs` in journal order (ascending ref, then
block) and a `WriteSource` that yields each referenced write once, in that order, so only one
write is in memory at a time (plus the cache behind the source). Output: extents in that same
order, each at most `max_bytes`, coalescing a run with the previous extent when it continues it
(next block, same op): sequential writes ship as large extents. Beside them, the xxh3-64 of every
block (a ZERO or TRIM block has the digest of a zero block), for the recovery point manifests.

The order depends only on the refs, never on where the data came from, so a restarted worker
emits byte-identical change sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

import xxhash

from .block_refs import Run
from .write_source import WriteData, WriteSource


@dataclass(frozen=True)
class SealedExtent:
    index: int
    offset: int
    length: int
    op: str
    data: bytes  # raw, uncompressed; empty for ZERO and TRIM
    checksum: bytes  # xxh3-64 of the extent's content (zeros for ZERO and TRIM)


@dataclass
class _Pending:
    first: int = -1
    blocks: int = 0
    op: str = ""
    parts: list[memoryview] = field(default_factory=list)


class ExtentSealer:
    """Turns runs into extents; `digests` maps each run's first block to 8 bytes per block."""

    def __init__(self, block_size: int, max_bytes: int) -> None:
        self.block_size = block_size
        self.max_blocks = max(1, max_bytes // block_size)
        self.zero_digest = xxhash.xxh3_64_digest(bytes(block_size))
        self.digests: dict[int, bytes] = {}
        self._zero_extent_digests: dict[int, bytes] = {}
        self._pending = _Pending()
        self._index = 0

    def seal(self, runs_by_ref: list[Run], source: WriteSource) -> Iterator[SealedExtent]:
        grouped = [(ref, list(runs)) for ref, runs in groupby(runs_by_ref, key=lambda run: run.ref)]
        writes = source.writes([ref for ref, _ in grouped])
        for (ref, runs), (got, write) in zip(grouped, writes, strict=True):
            if got != ref:
                raise ValueError(f"write source answered journal offset {got} for {ref}")
            yield from self._runs(runs, write)
        if self._pending.blocks:
            yield self._flush()

    def _runs(self, runs: Iterable[Run], write: WriteData) -> Iterator[SealedExtent]:
        bs = self.block_size
        data = memoryview(write.data)
        write_first = write.offset // bs
        for run in runs:
            if write.op == "WRITE":
                start = (run.first - write_first) * bs
                view = data[start : start + run.count * bs]
                self.digests[run.first] = b"".join(
                    xxhash.xxh3_64_digest(view[i : i + bs]) for i in range(0, len(view), bs)
                )
            else:
                view = data[0:0]
                self.digests[run.first] = self.zero_digest * run.count
            yield from self._add(run.first, run.count, write.op, view)

    def _add(self, first: int, count: int, op: str, view: memoryview) -> Iterator[SealedExtent]:
        bs = self.block_size
        done = 0
        while done < count:
            pending = self._pending
            continues = pending.blocks and pending.first + pending.blocks == first + done and pending.op == op
            if pending.blocks and (not continues or pending.blocks == self.max_blocks):
                yield self._flush()
                pending = self._pending
            if not pending.blocks:
                pending.first, pending.op = first + done, op
            take = min(count - done, self.max_blocks - pending.blocks)
            if op == "WRITE":
                pending.parts.append(view[done * bs : (done + take) * bs])
            pending.blocks += take
            done += take

    def _flush(self) -> SealedExtent:
        pending, self._pending = self._pending, _Pending()
        length = pending.blocks * self.block_size
        data = b"".join(pending.parts)
        if pending.op == "WRITE":
            checksum = xxhash.xxh3_64_digest(data)
        else:
            if length not in self._zero_extent_digests:
                self._zero_extent_digests[length] = xxhash.xxh3_64_digest(bytes(length))
            checksum = self._zero_extent_digests[length]
        extent = SealedExtent(self._index, pending.first * self.block_size, length, pending.op, data, checksum)
        self._index += 1
        return extent


def changeset_digest(checksums: Iterable[bytes]) -> bytes:
    """xxh3-64 of the change set's extent checksums in emission order (sinks check it)."""
    return xxhash.xxh3_64_digest(b"".join(checksums))
