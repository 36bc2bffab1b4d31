"""The recovery-point topic's records (`<prefix>.recovery-points`): RecoveryPoint and its chunks.

A point is its RecoveryPointChunks (index 0..chunk_count-1, ascending block order) followed by
one RecoveryPoint header; see schemas/RecoveryPoint.avsc.
"""

from __future__ import annotations

from typing import TypedDict

from ..exceptions import InvalidRecordError


class RecoveryPoint(TypedDict):
    """A manifest header; `kind` PERIODIC, REQUESTED, FLUSH or BARRIER; `created_at` in milliseconds."""

    volume: str
    rp_id: int
    seq: int
    created_at: int
    kind: str
    label: str | None
    parent: int | None
    block_size: int
    volume_size: int
    block_count: int
    chunk_count: int
    changeset_first: int | None
    changeset_last: int | None
    changed_bytes: int
    cut_bytes: int
    group: str | None
    barrier_id: str | None
    generation: int


class RecoveryPointChunk(TypedDict):
    """The changed blocks in [first_block, last_block] and one 8-byte xxh3-64 per block."""

    volume: str
    rp_id: int
    index: int
    first_block: int
    last_block: int
    bitmap: bytes
    checksums: bytes


def recovery_point(
    *,
    volume: str,
    rp_id: int,
    seq: int,
    created_at: int,
    kind: str,
    block_size: int,
    volume_size: int,
    changed_bytes: int,
    cut_bytes: int,
    label: str | None = None,
    parent: int | None = None,
    block_count: int = 0,
    chunk_count: int = 0,
    changeset_first: int | None = None,
    changeset_last: int | None = None,
    group: str | None = None,
    barrier_id: str | None = None,
    generation: int = 0,
) -> RecoveryPoint:
    """A RecoveryPoint header, written after its `chunk_count` chunks."""
    return {
        "volume": volume,
        "rp_id": rp_id,
        "seq": seq,
        "created_at": created_at,
        "kind": kind,
        "label": label,
        "parent": parent,
        "block_size": block_size,
        "volume_size": volume_size,
        "block_count": block_count,
        "chunk_count": chunk_count,
        "changeset_first": changeset_first,
        "changeset_last": changeset_last,
        "changed_bytes": changed_bytes,
        "cut_bytes": cut_bytes,
        "group": group,
        "barrier_id": barrier_id,
        "generation": generation,
    }


def recovery_point_chunk(
    *,
    volume: str,
    rp_id: int,
    index: int,
    first_block: int,
    last_block: int,
    bitmap: bytes,
    checksums: bytes,
) -> RecoveryPointChunk:
    """A RecoveryPointChunk. Raises `InvalidRecordError` when `first_block` is above `last_block`
    or `checksums` is not a whole number of 8-byte digests."""
    if first_block > last_block or first_block < 0:
        raise InvalidRecordError(
            f"RecoveryPointChunk {index} of point {rp_id} of volume {volume}: blocks {first_block}..{last_block} "
            "are not an ascending range of block indexes"
        )
    if len(checksums) % 8:
        raise InvalidRecordError(
            f"RecoveryPointChunk {index} of point {rp_id} of volume {volume}: {len(checksums)} bytes of checksums "
            "is not a whole number of 8-byte xxh3-64 digests"
        )
    return {
        "volume": volume,
        "rp_id": rp_id,
        "index": index,
        "first_block": first_block,
        "last_block": last_block,
        "bitmap": bitmap,
        "checksums": checksums,
    }
