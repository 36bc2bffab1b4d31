"""Block and extent arithmetic shared by every stage.

An extent is a byte range `[offset, offset + length)`. A volume is tracked in blocks of
`block_size` bytes; events always carry block-aligned extents (trackers widen unaligned writes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Extent:
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


def is_aligned(offset: int, length: int, block_size: int) -> bool:
    return offset % block_size == 0 and length % block_size == 0


def align_out(offset: int, length: int, block_size: int) -> Extent:
    """The smallest block-aligned extent covering `[offset, offset + length)`."""
    start = offset - offset % block_size
    end = offset + length
    if end % block_size:
        end += block_size - end % block_size
    return Extent(start, end - start)


def block_range(offset: int, length: int, block_size: int) -> range:
    """Indexes of the blocks touched by the byte range."""
    if length <= 0:
        return range(0)
    return range(offset // block_size, (offset + length - 1) // block_size + 1)


def split(offset: int, length: int, max_length: int) -> Iterator[Extent]:
    """Cut an extent into pieces of at most `max_length` bytes, in order."""
    if max_length <= 0:
        raise ValueError("max_length must be positive")
    end = offset + length
    while offset < end:
        step = min(max_length, end - offset)
        yield Extent(offset, step)
        offset += step


def runs(blocks: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Coalesce sorted block indexes into runs `(first, count)` of adjacent blocks."""
    first: int | None = None
    previous = 0
    for block in blocks:
        if first is not None and block == previous + 1:
            previous = block
            continue
        if first is not None:
            yield first, previous - first + 1
        first = previous = block
    if first is not None:
        yield first, previous - first + 1


def runs_limited(blocks: Iterable[int], max_blocks: int) -> Iterator[tuple[int, int]]:
    """Like `runs`, but no run is longer than `max_blocks` (keeps each event under the limit)."""
    for first, count in runs(blocks):
        while count > 0:
            step = min(count, max_blocks)
            yield first, step
            first += step
            count -= step
