"""Where the newest version of each dirty block of an open sub-interval sits in the journal.

The processor keeps no block data: per dirty block only the journal offset (a "ref") of the
BlockWrite that last wrote it. `BlockRefs` holds that map as disjoint runs of blocks sharing one
ref, sorted by first block, so its size follows the number of writes, not of blocks (a 1 GiB
TRIM is one run). Invariants: runs never overlap and never are empty; `block_count` is the sum
of their lengths; a later `assign` over a block always replaces the older ref.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

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
        if not self._ends or first >= self._ends[-1]:  # after every run (sequential writes)
            self._firsts.append(first)
            self._ends.append(end)
            self._refs.append(ref)
            self.block_count += count
            return
        lo = bisect_right(self._ends, first)  # the first run that ends after `first`
        hi = bisect_left(self._firsts, end)  # runs from `hi` on start at or after `end`
        if lo == hi:  # overlaps no run: a new run between two others
            self._firsts.insert(lo, first)
            self._ends.insert(lo, end)
            self._refs.insert(lo, ref)
            self.block_count += count
            return
        if hi == lo + 1 and self._firsts[lo] == first and self._ends[lo] == end:  # exactly one run again
            self._refs[lo] = ref
            return
        firsts, ends, refs = [first], [end], [ref]
        if self._firsts[lo] < first:  # the head of the first overlapped run stays
            firsts.insert(0, self._firsts[lo])
            ends.insert(0, first)
            refs.insert(0, self._refs[lo])
        if self._ends[hi - 1] > end:  # the tail of the last overlapped run stays
            firsts.append(end)
            ends.append(self._ends[hi - 1])
            refs.append(self._refs[hi - 1])
        self.block_count += sum(ends) - sum(firsts) - (sum(self._ends[lo:hi]) - sum(self._firsts[lo:hi]))
        self._firsts[lo:hi] = firsts
        self._ends[lo:hi] = ends
        self._refs[lo:hi] = refs

    def runs(self) -> Iterator[Run]:
        """Every run in ascending block order."""
        for first, end, ref in zip(self._firsts, self._ends, self._refs, strict=True):
            yield Run(first, end - first, ref)

    def runs_by_ref(self) -> list[Run]:
        """Every run in journal order (ascending ref), then block order: the order of a seal."""
        refs, firsts, ends = self.by_ref()
        return [Run(first, end - first, ref) for ref, first, end in zip(refs, firsts, ends, strict=True)]

    def by_ref(self) -> tuple[list[int], list[int], list[int]]:
        """`runs_by_ref` as columns: the runs' refs, firsts and ends (exclusive), run i of
        `runs_by_ref` in row i. The lists may be this object's own: read them, never change them."""
        refs, firsts, ends = self._refs, self._firsts, self._ends
        if sorted(refs) == refs:  # block order is already journal order (no write overwrote a later one)
            return refs, firsts, ends
        order = sorted(range(len(refs)), key=refs.__getitem__)  # stable: block order within a ref
        return [refs[i] for i in order], [firsts[i] for i in order], [ends[i] for i in order]

    def blocks(self) -> array[int]:
        """Every block of every run, ascending (unsigned 64-bit)."""
        if self.block_count == len(self._firsts):  # runs are never empty: every run is one block
            return array("Q", self._firsts)
        return array("Q", chain.from_iterable(map(range, self._firsts, self._ends)))

    def refs(self) -> list[int]:
        """The distinct journal offsets still pointed to, ascending."""
        return sorted(set(self._refs))

    def bitmap(self) -> BitMap:
        blocks = BitMap()
        deque(map(blocks.add_range, self._firsts, self._ends), maxlen=0)  # one add_range per run, in order
        return blocks
