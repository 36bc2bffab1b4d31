"""Where the newest version of each dirty block of an open sub-interval sits in the journal.

The processor keeps no block data: per dirty block only the journal offset (a "ref") of the
BlockWrite that last wrote it. `BlockRefs` holds that map as disjoint runs of blocks sharing one
ref, sorted by first block, so its size follows the number of writes, not of blocks (a 1 GiB
TRIM is one run). Invariants: runs never overlap and never are empty; `block_count` is the sum
of their lengths; a later `assign` over a block always replaces the older ref.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from pyroaring import BitMap


@dataclass(frozen=True)
class Run:
    """`count` blocks from `first` whose newest version is the write at journal offset `ref`."""

    first: int
    count: int
    ref: int


class BlockRefs:
    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._ends: list[int] = []  # exclusive
        self._refs: list[int] = []
        self.block_count = 0

    def __len__(self) -> int:
        return len(self._firsts)

    def assign(self, first: int, count: int, ref: int) -> None:
        """Blocks [first, first + count) now point to `ref`."""
        end = first + count
        lo = bisect_right(self._ends, first)  # the first run that ends after `first`
        hi = bisect_left(self._firsts, end)  # runs from `hi` on start at or after `end`
        firsts, ends, refs = [first], [end], [ref]
        if lo < hi:
            if self._firsts[lo] < first:  # the head of the first overlapped run stays
                firsts.insert(0, self._firsts[lo])
                ends.insert(0, first)
                refs.insert(0, self._refs[lo])
            if self._ends[hi - 1] > end:  # the tail of the last overlapped run stays
                firsts.append(end)
                ends.append(self._ends[hi - 1])
                refs.append(self._refs[hi - 1])
            self.block_count -= sum(self._ends[i] - self._firsts[i] for i in range(lo, hi))
        self.block_count += sum(e - f for f, e in zip(firsts, ends, strict=True))
        self._firsts[lo:hi] = firsts
        self._ends[lo:hi] = ends
        self._refs[lo:hi] = refs

    def runs(self) -> Iterator[Run]:
        """Every run in ascending block order."""
        for first, end, ref in zip(self._firsts, self._ends, self._refs, strict=True):
            yield Run(first, end - first, ref)

    def runs_by_ref(self) -> list[Run]:
        """Every run in journal order (ascending ref), then block order: the order of a seal."""
        return sorted(self.runs(), key=lambda run: (run.ref, run.first))

    def refs(self) -> list[int]:
        """The distinct journal offsets still pointed to, ascending."""
        return sorted(set(self._refs))

    def bitmap(self) -> BitMap:
        blocks = BitMap()
        for first, end in zip(self._firsts, self._ends, strict=True):
            blocks.add_range(first, end)
        return blocks
