"""The change-set topic's records (`<prefix>.changesets`): Extent, ChangeSetSealed, ResyncRequest.

A change set is its Extents (index 0..extent_count-1) followed by one ChangeSetSealed; a
ResyncRequest says the journal lost writes. Times are milliseconds of log time (the processor
never reads the wall clock): the caller passes them.
"""

from __future__ import annotations

from typing import TypedDict

from .checks import check_checksum, check_extent


class Extent(TypedDict):
    """A run of changed blocks of change set `changeset_id`; `op` WRITE, ZERO or TRIM."""

    volume: str
    changeset_id: int
    index: int
    offset: int
    length: int
    op: str
    compression: str
    data: bytes
    checksum: bytes


class ChangeSetSealed(TypedDict):
    """Closes a change set; `reason` INTERVAL, SIZE or CUT; `rp_id` set on the cut of that point."""

    volume: str
    changeset_id: int
    epoch: int
    seq_first: int
    seq_last: int
    extent_count: int
    block_size: int
    block_count: int
    bytes: int
    bitmap: bytes
    digest: bytes
    sealed_at: int
    reason: str
    rp_id: int | None
    generation: int


class ResyncRequest(TypedDict):
    """The blocks in `bitmap` (None: every block) must be re-read from the source."""

    volume: str
    epoch: int
    expected_seq: int
    seen_seq: int
    reason: str
    bitmap: bytes | None
    timestamp: int


def extent(
    *,
    volume: str,
    changeset_id: int,
    index: int,
    offset: int,
    length: int,
    op: str,
    compression: str,
    data: bytes,
    checksum: bytes,
) -> Extent:
    """An Extent; `checksum` the 8-byte xxh3-64 of the raw bytes (of zeros for ZERO and TRIM).

    Raises `InvalidRecordError` for a negative offset or length, or a checksum not 8 bytes long.
    """
    check_extent("Extent", volume, offset, length)
    check_checksum("Extent", volume, offset, checksum)
    return {
        "volume": volume,
        "changeset_id": changeset_id,
        "index": index,
        "offset": offset,
        "length": length,
        "op": op,
        "compression": compression,
        "data": data,
        "checksum": checksum,
    }


def change_set_sealed(
    *,
    volume: str,
    changeset_id: int,
    epoch: int,
    seq_first: int,
    seq_last: int,
    extent_count: int,
    block_size: int,
    block_count: int,
    bytes: int,
    bitmap: bytes,
    digest: bytes,
    sealed_at: int,
    reason: str,
    rp_id: int | None = None,
    generation: int = 0,
) -> ChangeSetSealed:
    """A ChangeSetSealed; `sealed_at` in milliseconds; `bitmap` a portable roaring bitmap."""
    return {
        "volume": volume,
        "changeset_id": changeset_id,
        "epoch": epoch,
        "seq_first": seq_first,
        "seq_last": seq_last,
        "extent_count": extent_count,
        "block_size": block_size,
        "block_count": block_count,
        "bytes": bytes,
        "bitmap": bitmap,
        "digest": digest,
        "sealed_at": sealed_at,
        "reason": reason,
        "rp_id": rp_id,
        "generation": generation,
    }


def resync_request(
    *,
    volume: str,
    epoch: int,
    expected_seq: int,
    seen_seq: int,
    reason: str,
    timestamp: int,
    bitmap: bytes | None = None,
) -> ResyncRequest:
    """A ResyncRequest; `seen_seq` -1 when no seq was seen; `timestamp` in milliseconds."""
    return {
        "volume": volume,
        "epoch": epoch,
        "expected_seq": expected_seq,
        "seen_seq": seen_seq,
        "reason": reason,
        "bitmap": bitmap,
        "timestamp": timestamp,
    }
