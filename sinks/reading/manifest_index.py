"""The recovery-point manifest contract, without Kafka: where a volume's points sit in its
partition, and whether a point's chunk stream is whole.

Contract (schemas/RecoveryPoint.avsc, schemas/RecoveryPointChunk.avsc): per point, in one Kafka
transaction on the volume's partition, `RecoveryPointChunk` events index 0..n-1 in ascending block
order, then the `RecoveryPoint` header with `chunk_count = n` and `block_count`. A reader holds a
point only once its header arrived; chunks with no header after them (an aborted or incomplete
point) are ignored. The chunks of point P therefore lie after the volume's previous header and
before P's own header: `PointLocation.start_offset` .. `header_offset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyroaring import BitMap

from ..exceptions import ManifestError

CHECKSUM_BYTES = 8
MAX_CHUNK_BLOCKS = 65_536


@dataclass(frozen=True)
class PointLocation:
    """A complete point: its header, and the offsets that bound its chunks in the partition."""

    header: dict[str, Any]
    partition: int
    start_offset: int  # right after the volume's previous header (or the partition's first offset)
    header_offset: int

    @property
    def rp_id(self) -> int:
        return int(self.header["rp_id"])


@dataclass(frozen=True)
class Chunk:
    """One slice of a point: the changed blocks in [first_block, last_block] and their checksums."""

    rp_id: int
    index: int
    first_block: int
    last_block: int
    bitmap: BitMap
    checksums: bytes  # 8-byte xxh3-64 per bitmap block, ascending block order

    def checksum(self, position: int) -> bytes:
        """The checksum of the `position`-th block of the bitmap (0-based)."""
        return self.checksums[CHECKSUM_BYTES * position : CHECKSUM_BYTES * position + CHECKSUM_BYTES]


class HeaderIndex:
    """Folds the events of one volume in one partition, in offset order, into its points.

    Feed every offset of the volume's key with `event` (the record type is enough: a chunk's body
    is never needed here) and each header with `header`. Memory: one small header per point.
    """

    def __init__(self, volume: str, partition: int, first_offset: int) -> None:
        self.volume = volume
        self.partition = partition
        self.points: dict[int, PointLocation] = {}
        self._start = first_offset

    def header(self, offset: int, record: dict[str, Any]) -> None:
        if record["volume"] != self.volume:
            return
        location = PointLocation(record, self.partition, self._start, offset)
        self.points[location.rp_id] = location
        self._start = offset + 1

    def sorted_points(self) -> dict[int, PointLocation]:
        return dict(sorted(self.points.items()))


def chunk_of(record: dict[str, Any]) -> Chunk:
    """A decoded RecoveryPointChunk record as a Chunk; checks its own consistency."""
    where = f"chunk {record['index']} of recovery point {record['rp_id']} of volume {record['volume']!r}"
    try:
        bitmap = BitMap.deserialize(record["bitmap"])
    except (ValueError, OverflowError) as exc:
        raise ManifestError(f"{where}: its bitmap is not a portable roaring bitmap ({exc})") from exc
    checksums = record["checksums"]
    if len(checksums) != CHECKSUM_BYTES * len(bitmap):
        raise ManifestError(f"{where}: {len(checksums)} checksum bytes for {len(bitmap)} blocks")
    if len(bitmap) > MAX_CHUNK_BLOCKS:
        raise ManifestError(f"{where}: {len(bitmap)} blocks, more than {MAX_CHUNK_BLOCKS}")
    first, last = record["first_block"], record["last_block"]
    if bitmap and (bitmap.min() < first or bitmap.max() > last):
        raise ManifestError(f"{where}: blocks {bitmap.min()}..{bitmap.max()} outside [{first}, {last}]")
    return Chunk(record["rp_id"], record["index"], first, last, bitmap, bytes(checksums))


class ChunkSequence:
    """Checks that a point's chunks arrive whole: indexes 0..n-1, ascending disjoint ranges, and
    as many chunks and blocks as the header declares. Holds only counters."""

    def __init__(self, volume: str, header: dict[str, Any]) -> None:
        self.volume = volume
        self.rp_id: int = header["rp_id"]
        self.chunk_count: int = header["chunk_count"]
        self.block_count: int = header["block_count"]
        self.chunks = 0
        self.blocks = 0
        self._last_block = -1

    def accept(self, chunk: Chunk, offset: int) -> Chunk:
        where = f"recovery point {self.rp_id} of volume {self.volume!r} at offset {offset}"
        if chunk.index != self.chunks:
            raise ManifestError(
                f"{where}: chunk {chunk.index} arrived where chunk {self.chunks} was due; "
                "the manifest is not whole (was it written outside a transaction?)"
            )
        if chunk.first_block <= self._last_block or chunk.last_block < chunk.first_block:
            raise ManifestError(
                f"{where}: chunk {chunk.index} covers [{chunk.first_block}, {chunk.last_block}], "
                f"not after block {self._last_block}"
            )
        self.chunks += 1
        self.blocks += len(chunk.bitmap)
        self._last_block = chunk.last_block
        return chunk

    def finish(self) -> None:
        if (self.chunks, self.blocks) != (self.chunk_count, self.block_count):
            raise ManifestError(
                f"recovery point {self.rp_id} of volume {self.volume!r}: {self.chunks} chunks with "
                f"{self.blocks} blocks arrived, the header declares {self.chunk_count} chunks with "
                f"{self.block_count} blocks"
            )
