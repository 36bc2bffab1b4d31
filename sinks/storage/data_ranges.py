"""Where a sparse file holds data (SEEK_DATA/SEEK_HOLE), so scans skip what is a hole everywhere."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable

Range = tuple[int, int]  # [start, end) in bytes


def data_ranges(fd: int, size: int) -> list[Range]:
    """The data ranges of the file up to `size`; the whole file where holes cannot be seen."""
    found: list[Range] = []
    position = 0
    while position < size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after position
                break
            if exc.errno == errno.EINVAL:  # the filesystem does not report holes
                return [(0, size)] if size else []
            raise
        if start >= size:
            break
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        found.append((start, end))
        position = end
    return found


def union_aligned(ranges: Iterable[Range], block_size: int, size: int) -> list[Range]:
    """The ranges widened to whole blocks, sorted, overlapping and adjacent ones merged."""
    widened = sorted(
        (start // block_size * block_size, min(size, -(-end // block_size) * block_size)) for start, end in ranges
    )
    merged: list[Range] = []
    for start, end in widened:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
