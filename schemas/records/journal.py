"""The journal's records (`<prefix>.writes`): BlockWrite and Marker (schemas/BlockWrite.avsc, Marker.avsc).

Constructors are pure: the caller passes every time and id, so the same arguments give the same
record. The tracker's hot path encodes BlockWrite by hand (`producers/blockwrite_encoder.py`);
its bytes are tested equal to `block_write` through the codec.
"""

from __future__ import annotations

import uuid
from typing import TypedDict

from .checks import check_checksum, check_extent


class BlockWrite(TypedDict):
    """One block-aligned write; `op` WRITE, ZERO or TRIM; `compression` NONE, LZ4 or ZSTD."""

    volume: str
    epoch: int
    seq: int
    timestamp: int
    offset: int
    length: int
    op: str
    compression: str
    data: bytes
    checksum: bytes
    generation: int


class Marker(TypedDict):
    """A cut in a volume's write stream; `kind` REQUESTED, FLUSH, BARRIER or EPOCH_START."""

    volume: str
    marker_id: str
    kind: str
    timestamp: int
    epoch: int | None
    after_seq: int | None
    label: str | None
    group: str | None
    barrier_id: str | None
    generation: int


def block_write(
    *,
    volume: str,
    epoch: int,
    seq: int,
    timestamp: int,
    offset: int,
    length: int,
    op: str,
    compression: str,
    data: bytes,
    checksum: bytes,
    generation: int = 0,
) -> BlockWrite:
    """A BlockWrite; `timestamp` in microseconds; `checksum` the 8-byte xxh3-64 of the raw data.

    Raises `InvalidRecordError` for a negative offset or length, or a checksum not 8 bytes long.
    """
    check_extent("BlockWrite", volume, offset, length)
    check_checksum("BlockWrite", volume, offset, checksum)
    return {
        "volume": volume,
        "epoch": epoch,
        "seq": seq,
        "timestamp": timestamp,
        "offset": offset,
        "length": length,
        "op": op,
        "compression": compression,
        "data": data,
        "checksum": checksum,
        "generation": generation,
    }


def new_marker_id() -> str:
    """A fresh marker id (a random UUID): a marker is told apart from a retried copy of itself by it."""
    return str(uuid.uuid4())


def marker(
    *,
    volume: str,
    marker_id: str,
    kind: str,
    timestamp: int,
    epoch: int | None = None,
    after_seq: int | None = None,
    label: str | None = None,
    group: str | None = None,
    barrier_id: str | None = None,
    generation: int = 0,
) -> Marker:
    """A Marker; `timestamp` in microseconds; `epoch` and `after_seq` are set when a tracker wrote it."""
    return {
        "volume": volume,
        "marker_id": marker_id,
        "kind": kind,
        "timestamp": timestamp,
        "epoch": epoch,
        "after_seq": after_seq,
        "label": label,
        "group": group,
        "barrier_id": barrier_id,
        "generation": generation,
    }
