"""Collects what the folder emits, and applies change sets to an in-memory mirror."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyroaring import BitMap


class MemoryEmitter:
    def __init__(self) -> None:
        self.changesets: list[tuple[str, Mapping[str, Any]]] = []
        self.rp_events: list[tuple[str, Mapping[str, Any]]] = []
        self.metric_records: list[Mapping[str, Any]] = []

    def changeset_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None:
        self.changesets.append((record_type, record))

    def recovery_point_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None:
        self.rp_events.append((record_type, record))

    def metrics(self, volume: str, record: Mapping[str, Any]) -> None:
        self.metric_records.append(record)

    @property
    def recovery_points(self) -> list[Mapping[str, Any]]:
        return [r for t, r in self.rp_events if t == "RecoveryPoint"]

    def point(self, rp_id: int) -> tuple[list[int], list[bytes]]:
        """A point read back as a reader would: its chunks in order, then its header."""
        blocks: list[int] = []
        digests: list[bytes] = []
        chunks = [r for t, r in self.rp_events if t == "RecoveryPointChunk" and r["rp_id"] == rp_id]
        (header,) = [r for r in self.recovery_points if r["rp_id"] == rp_id]
        assert [c["index"] for c in chunks] == list(range(header["chunk_count"]))
        for chunk in chunks:
            bitmap = BitMap.deserialize(chunk["bitmap"])
            assert len(chunk["checksums"]) == 8 * len(bitmap) and len(bitmap) <= 65_536
            assert bitmap.min() == chunk["first_block"] and bitmap.max() == chunk["last_block"]
            assert not blocks or blocks[-1] < chunk["first_block"], "chunks ascend"
            blocks.extend(bitmap)
            digests.extend(chunk["checksums"][i : i + 8] for i in range(0, len(chunk["checksums"]), 8))
        assert header["block_count"] == len(blocks)
        return blocks, digests

    def extents(self) -> list[Mapping[str, Any]]:
        return [r for t, r in self.changesets if t == "Extent"]

    def seals(self) -> list[Mapping[str, Any]]:
        return [r for t, r in self.changesets if t == "ChangeSetSealed"]

    def apply_to(self, mirror: bytearray) -> None:
        for record in self.extents():
            start, end = record["offset"], record["offset"] + record["length"]
            mirror[start:end] = record["data"] if record["op"] == "WRITE" else bytes(record["length"])
