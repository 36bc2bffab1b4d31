"""Collects the extents of the open change set until its seal, with bounded memory.

Raw (decompressed, checksum-verified) extent bytes go to a spool file; memory holds only the
metadata of each extent. Contract (see the change-set stream contract in the design): an Extent
with index 0 restarts the buffer (a re-emission after a processor crash); the seal's count and
digest decide whether the set is whole. Compressed extent data is decoded by the shared bounded
decoder (tidemark/core/decoding.py): never more than the extent's declared `length`, whatever the
frame header says, so a decompression bomb is an InvalidChangeSetError (a dead letter), not memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import xxhash

from tidemark.core.decoding import DecompressError, decompress

from ..exceptions import InvalidChangeSetError


@dataclass(frozen=True)
class ExtentOp:
    offset: int
    length: int
    op: str  # WRITE, ZERO or TRIM
    spool_pos: int  # where the raw bytes start in the spool (WRITE only)


@dataclass
class SealedChangeSet:
    """A whole, verified change set, ready to apply."""

    changeset_id: int
    seq_last: int
    rp_id: int | None
    sealed_at: int
    extents: list[ExtentOp]
    spool: IO[bytes]
    generation: int = 0
    """the primary generation the processor sealed it under (0 from processors before the field)"""

    def data(self, extent: ExtentOp) -> bytes:
        self.spool.seek(extent.spool_pos)
        return self.spool.read(extent.length)

    def blocks(self, block_size: int) -> Iterator[int]:
        for extent in self.extents:
            yield from range(extent.offset // block_size, (extent.offset + extent.length) // block_size)


@dataclass
class ChangeSetBuffer:
    """The extents received so far of one change set of one volume."""

    volume: str
    volume_size: int
    block_size: int
    spool_dir: Path
    changeset_id: int | None = None
    broken: str | None = None  # why this attempt cannot be applied, once known
    _extents: list[ExtentOp] = field(default_factory=list)
    _checksums: list[bytes] = field(default_factory=list)
    _spool: IO[bytes] | None = None

    def add(self, record: dict[str, Any]) -> None:
        """Buffer one Extent. Raises InvalidChangeSetError for an extent that can never apply."""
        cs_id, index = record["changeset_id"], record["index"]
        if index == 0:
            self._restart(cs_id)
        elif cs_id != self.changeset_id or index != len(self._extents) or self.broken:
            self.changeset_id = cs_id
            self.broken = self.broken or (
                f"extent {index} of change set {cs_id} arrived without extents 0..{index - 1}"
            )
            return
        try:
            self._append(record)
        except InvalidChangeSetError as exc:
            self.broken = str(exc)
            raise

    def seal(self, record: dict[str, Any]) -> SealedChangeSet:
        """Check the seal against the buffer; the result owns the spool until the next restart."""
        cs_id = record["changeset_id"]
        count = record["extent_count"]
        if count > 0 and self.changeset_id != cs_id:
            raise InvalidChangeSetError(f"seal of change set {cs_id} arrived without its extents")
        if count > 0 and self.broken:
            raise InvalidChangeSetError(f"change set {cs_id} is not whole: {self.broken}")
        extents = self._extents if count > 0 else []
        if len(extents) != count:
            raise InvalidChangeSetError(f"change set {cs_id} declares {count} extents but {len(extents)} arrived")
        digest = xxhash.xxh3_64_digest(b"".join(self._checksums if count > 0 else []))
        if digest != record["digest"]:
            raise InvalidChangeSetError(
                f"change set {cs_id} digest {record['digest'].hex()} does not match its extents ({digest.hex()})"
            )
        if record["block_size"] != self.block_size:
            raise InvalidChangeSetError(
                f"change set {cs_id} uses block size {record['block_size']}, the volume "
                f"{self.volume!r} uses {self.block_size}"
            )
        spool = self._ensure_spool()
        spool.flush()
        return SealedChangeSet(
            changeset_id=cs_id,
            seq_last=record["seq_last"],
            rp_id=record.get("rp_id"),
            sealed_at=record["sealed_at"],
            extents=list(extents),
            spool=spool,
            generation=record.get("generation", 0),
        )

    def reset(self) -> None:
        self.changeset_id = None
        self.broken = None
        self._extents.clear()
        self._checksums.clear()
        if self._spool is not None:
            self._spool.seek(0)
            self._spool.truncate()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _restart(self, cs_id: int) -> None:
        self.reset()
        self.changeset_id = cs_id

    def _ensure_spool(self) -> IO[bytes]:
        if self._spool is None:
            # held across calls, closed by reset(): no `with` block fits its lifetime
            self._spool = tempfile.TemporaryFile(dir=self.spool_dir, prefix="changeset-")  # noqa: SIM115
        return self._spool

    def _append(self, record: dict[str, Any]) -> None:
        offset, length, op = record["offset"], record["length"], record["op"]
        where = f"extent {record['index']} of change set {record['changeset_id']}"
        if record["volume"] != self.volume:
            raise InvalidChangeSetError(f"{where} names volume {record['volume']!r} under key {self.volume!r}")
        if offset < 0 or length <= 0 or offset % self.block_size or length % self.block_size:
            raise InvalidChangeSetError(
                f"{where}: [{offset}, +{length}) is not aligned to the block size {self.block_size}"
            )
        if offset + length > self.volume_size:
            raise InvalidChangeSetError(
                f"{where}: [{offset}, {offset + length}) is past the end of volume {self.volume!r} "
                f"({self.volume_size} bytes)"
            )
        if len(record["checksum"]) != 8:
            raise InvalidChangeSetError(f"{where}: checksum is {len(record['checksum'])} bytes, not 8")
        spool = self._ensure_spool()
        spool.seek(0, 2)
        position = spool.tell()
        if op == "WRITE":
            try:
                raw = decompress(record["data"], record["compression"], length, f"volume {self.volume!r} {where}")
            except DecompressError as exc:
                raise InvalidChangeSetError(f"{type(exc).__name__}: {exc}") from exc
            if len(raw) != length:
                raise InvalidChangeSetError(f"{where}: {len(raw)} data bytes for a {length}-byte extent")
            if xxhash.xxh3_64_digest(raw) != record["checksum"]:
                raise InvalidChangeSetError(f"{where}: data does not match its checksum")
            spool.write(raw)
        elif op not in ("ZERO", "TRIM"):
            raise InvalidChangeSetError(f"{where}: unknown op {op!r}")
        self._extents.append(ExtentOp(offset, length, op, position))
        self._checksums.append(record["checksum"])
