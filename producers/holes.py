"""Find the data and the holes of a sparse image (lseek SEEK_DATA / SEEK_HOLE).

Segments are widened to whole blocks: a block is a hole only when all of it is a hole, so a
block holding any data byte is read. Filesystems without SEEK_DATA report the whole file as data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tidemark.core.image_io import data_ranges


@dataclass(frozen=True, slots=True)
class Segment:
    offset: int
    length: int
    data: bool

    @property
    def end(self) -> int:
        return self.offset + self.length


def segments(fd: int, size: int, block_size: int) -> Iterator[Segment]:
    """Alternating, block-aligned data and hole segments covering `[0, size)` in order."""
    position = 0
    for start, end in data_ranges(fd, 0, size):
        data_start = max(position, start - start % block_size)
        data_end = min(size, -(-end // block_size) * block_size)
        if data_end <= position:  # inside the block the previous segment was widened to
            continue
        if data_start > position:
            yield Segment(position, data_start - position, False)
        yield Segment(data_start, data_end - data_start, True)
        position = data_end
    if position < size:
        yield Segment(position, size - position, False)
