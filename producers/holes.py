"""Find the data and the holes of a sparse image (lseek SEEK_DATA / SEEK_HOLE).

Segments are widened to whole blocks: a block is a hole only when all of it is a hole, so a
block holding any data byte is read. Filesystems without SEEK_DATA report the whole file as data.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass


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
    while position < size:
        data_at = _seek(fd, position, os.SEEK_DATA, size)
        if data_at is None:
            yield Segment(position, size - position, False)
            return
        data_start = data_at - data_at % block_size
        if data_start > position:
            yield Segment(position, data_start - position, False)
        hole_at = _seek(fd, data_at, os.SEEK_HOLE, size)
        data_end = size if hole_at is None else min(size, -(-hole_at // block_size) * block_size)
        yield Segment(data_start, data_end - data_start, True)
        position = data_end


def _seek(fd: int, offset: int, whence: int, size: int) -> int | None:
    """Where the next data/hole starts, clipped to `size`; None when there is no more data."""
    try:
        found = os.lseek(fd, offset, whence)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return offset if whence == os.SEEK_DATA else size
        raise
    return found if found < size else None
