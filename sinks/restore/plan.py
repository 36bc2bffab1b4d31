"""What a restore copies and which client writes need the point's content first (pure logic).

The point's data blocks are the blocks where the mirror image holds data (SEEK_DATA, widened to
whole blocks) plus the blocks the mirror changed since the point (their undo entries hold the
point's content). Every other block reads as zeros at the point, now and later: the applier saves
a block's pre-image (zeros for a hole) before it writes there, so a plan taken once at start stays
right while the mirror goes on applying. A destination created sparse already holds those zeros.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyroaring import BitMap

from tidemark.core.image_io import Range

from ..storage.data_ranges import union_aligned

Span = tuple[int, int, bool]  # (first block, block count, inside the bitmap)


def ranges_to_blocks(ranges: Iterable[Range], block_size: int, size: int) -> BitMap:
    """The blocks touched by byte ranges `[start, end)` (widened to whole blocks, clipped to `size`)."""
    blocks = BitMap()
    for start, end in union_aligned(ranges, block_size, size):
        blocks.add_range(start // block_size, -(-end // block_size))
    return blocks


def point_blocks(mirror_ranges: Iterable[Range], changed: BitMap, block_size: int, size: int) -> BitMap:
    """The blocks of the point that may hold data: the mirror's data blocks and those changed since."""
    return ranges_to_blocks(mirror_ranges, block_size, size) | changed


def pending_blocks(point: BitMap, stale: BitMap, relocated: BitMap) -> BitMap:
    """What is left to copy: the point's data blocks, and the destination's data blocks whose
    content is not known final (`stale`: written before a crash, never recorded as relocated; the
    point's content goes over them), minus the blocks already relocated."""
    return (point | stale) - relocated


def widened(blocks: BitMap, unit: int) -> BitMap:
    """Every block of the `unit`-aligned groups holding one of `blocks`: a scattered read profile
    becomes a few copy runs of up to `unit` blocks instead of one run per block."""
    found = BitMap()
    for group in sorted({block // unit for block in blocks}):
        found.add_range(group * unit, (group + 1) * unit)
    return found


def partial_blocks(offset: int, length: int, block_size: int) -> list[int]:
    """The blocks `[offset, offset + length)` covers only in part: none, the first, the last, or both."""
    if length <= 0:
        return []
    end = offset + length
    found = [offset // block_size] if offset % block_size else []
    last = (end - 1) // block_size
    if end % block_size and last not in found:
        found.append(last)
    return found


def spans(blocks: BitMap, first: int, last: int) -> list[Span]:
    """Blocks `first`..`last` cut into maximal runs that are all inside or all outside `blocks`."""
    found: list[Span] = []
    start, inside = first, first in blocks
    for block in range(first + 1, last + 1):
        here = block in blocks
        if here != inside:
            found.append((start, block - start, inside))
            start, inside = block, here
    found.append((start, last + 1 - start, inside))
    return found
