"""Data ranges (from `tidemark.core.image_io.data_ranges`) widened to whole blocks and merged, so
scans skip what is a hole everywhere."""

from __future__ import annotations

from collections.abc import Iterable

from tidemark.core.image_io import Range


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
