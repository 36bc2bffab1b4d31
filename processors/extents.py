"""Sealing: the open sub-interval's dirty blocks, read back from their writes, as Extent events.

Pure logic, no Kafka. Input: the runs of `BlockRefs` in journal order (ascending ref, then
block, as `BlockRefs.by_ref` gives them) and a `WriteSource` that yields each referenced write
once, in that order, so only one write is in memory at a time (plus the cache behind the source).
Output: extents in that same order, each at most `max_bytes`, coalescing a run with the previous
extent when it continues it (next block, same op): sequential writes ship as large extents.
Beside them, the xxh3-64 of every block (a ZERO or TRIM block has the digest of a zero block),
for the recovery point manifests.

The order depends only on the refs, never on where the data came from, so a restarted worker
emits byte-identical change sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import xxhash

from .write_source import WriteSource

_digest = xxhash.xxh3_64_digest


@dataclass(frozen=True)
class SealedExtent:
    index: int
    offset: int
    length: int
    op: str
    data: bytes  # raw, uncompressed; empty for ZERO and TRIM
    checksum: bytes  # xxh3-64 of the extent's content (zeros for ZERO and TRIM)


class ExtentSealer:
    """Turns runs into extents; `digests` maps each run's first block to 8 bytes per block.

    After `seal` is exhausted, `digests` holds one entry per run it was given, `8 * count` bytes
    each, so the digests in ascending block order are `digests[first]` over the runs' firsts.
    """

    def __init__(self, block_size: int, max_bytes: int) -> None:
        self.block_size = block_size
        self.max_blocks = max(1, max_bytes // block_size)
        self.zero_digest = xxhash.xxh3_64_digest(bytes(block_size))
        self.digests: dict[int, bytes] = {}
        self._zero_extent_digests: dict[int, bytes] = {}
        self._index = 0

    def seal(
        self, refs: Sequence[int], firsts: Sequence[int], ends: Sequence[int], source: WriteSource
    ) -> Iterator[SealedExtent]:
        """Extents of the runs given as columns (`BlockRefs.by_ref`): run i is blocks
        [firsts[i], ends[i]) of the write at journal offset refs[i], in ascending (ref, first).

        An extent is yielded once it can grow no more: the next run does not continue it (other
        block, other op) or it holds `max_blocks`; the last one after the last run.
        """
        bs = self.block_size
        max_blocks = self.max_blocks
        digests = self.digests
        zero_digest = self.zero_digest
        writes = iter(source.writes(list(dict.fromkeys(refs))))  # each ref once, still ascending
        current = -1
        data = memoryview(b"")
        op = ""
        write_first = 0
        # The extent being built: `blocks` blocks from `first`, of `pending_op`, data in `parts`.
        first = -1
        blocks = 0
        pending_op = ""
        parts: list[memoryview] = []
        for ref, run_first, run_end in zip(refs, firsts, ends, strict=True):
            if ref != current:
                got, write = next(writes, (None, None))
                if write is None:
                    raise ValueError("write source answered fewer writes than asked for")
                if got != ref:
                    raise ValueError(f"write source answered journal offset {got} for {ref}")
                current = ref
                op = write.op
                data = memoryview(write.data)
                write_first = write.offset // bs
            count = run_end - run_first
            if op == "WRITE":
                start = (run_first - write_first) * bs
                view = data[start : start + count * bs]
                if count == 1:
                    digests[run_first] = _digest(view)
                else:
                    digests[run_first] = b"".join([_digest(view[i : i + bs]) for i in range(0, count * bs, bs)])
            else:
                view = data[0:0]
                digests[run_first] = zero_digest * count
            if blocks and first + blocks == run_first and pending_op == op and blocks + count <= max_blocks:
                # the common case: the run continues the extent and fits in it whole
                if op == "WRITE":
                    parts.append(view)
                blocks += count
                continue
            done = 0
            while done < count:
                if blocks and (first + blocks != run_first + done or pending_op != op or blocks == max_blocks):
                    yield self._extent(first, blocks, pending_op, parts)
                    blocks = 0
                    parts = []
                if not blocks:
                    first, pending_op = run_first + done, op
                take = min(count - done, max_blocks - blocks)
                if op == "WRITE":
                    parts.append(view[done * bs : (done + take) * bs])
                blocks += take
                done += take
        if next(writes, None) is not None:
            raise ValueError("write source answered more writes than asked for")
        if blocks:
            yield self._extent(first, blocks, pending_op, parts)

    def _extent(self, first: int, blocks: int, op: str, parts: list[memoryview]) -> SealedExtent:
        length = blocks * self.block_size
        data = b"".join(parts)
        if op == "WRITE":
            checksum = _digest(data)
        elif length in self._zero_extent_digests:
            checksum = self._zero_extent_digests[length]
        else:
            checksum = self._zero_extent_digests[length] = _digest(bytes(length))
        extent = SealedExtent(self._index, first * self.block_size, length, op, data, checksum)
        self._index += 1
        return extent


def changeset_digest(checksums: Iterable[bytes]) -> bytes:
    """xxh3-64 of the change set's extent checksums in emission order (sinks check it)."""
    return xxhash.xxh3_64_digest(b"".join(checksums))
