"""Compacted per-volume records: Volume (`<prefix>.volumes`) and ReadProfile (`<prefix>.read-profiles`).

Both are keyed by volume name and the last event of a key wins.
"""

from __future__ import annotations

from typing import TypedDict


class Volume(TypedDict):
    """A protected volume: `size` bytes in `block_size` blocks, its primary generation and site."""

    name: str
    size: int
    block_size: int
    group: str | None
    created_at: int
    deleted: bool
    generation: int
    primary_site: str | None


class ReadProfile(TypedDict):
    """The first blocks a client read after it connected (`blocks`: a portable roaring bitmap)."""

    volume: str
    recorded_at: int
    block_size: int
    block_count: int
    blocks: bytes


def volume(
    *,
    name: str,
    size: int,
    block_size: int,
    created_at: int,
    group: str | None = None,
    deleted: bool = False,
    generation: int = 0,
    primary_site: str | None = None,
) -> Volume:
    """A Volume; `created_at` in milliseconds. Sizes are checked where a volume is defined
    (`tidemark.core.volumes.VolumeSpec`), not again here."""
    return {
        "name": name,
        "size": size,
        "block_size": block_size,
        "group": group,
        "created_at": created_at,
        "deleted": deleted,
        "generation": generation,
        "primary_site": primary_site,
    }


def read_profile(*, volume: str, recorded_at: int, block_size: int, block_count: int, blocks: bytes) -> ReadProfile:
    """A ReadProfile; `recorded_at` in milliseconds, `block_count` the bitmap's cardinality."""
    return {
        "volume": volume,
        "recorded_at": recorded_at,
        "block_size": block_size,
        "block_count": block_count,
        "blocks": blocks,
    }
