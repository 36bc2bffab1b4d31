"""Collects what the folder emits, and applies change sets to an in-memory mirror."""

from __future__ import annotations

from typing import Any

import lz4.frame


class MemoryEmitter:
    def __init__(self) -> None:
        self.changesets: list[tuple[str, dict[str, Any]]] = []
        self.recovery_points: list[dict[str, Any]] = []
        self.metric_records: list[dict[str, Any]] = []

    def changeset_event(self, volume: str, record_type: str, record: dict[str, Any]) -> None:
        self.changesets.append((record_type, record))

    def recovery_point(self, volume: str, record: dict[str, Any]) -> None:
        self.recovery_points.append(record)

    def metrics(self, volume: str, record: dict[str, Any]) -> None:
        self.metric_records.append(record)

    def extents(self) -> list[dict[str, Any]]:
        return [r for t, r in self.changesets if t == "Extent"]

    def seals(self) -> list[dict[str, Any]]:
        return [r for t, r in self.changesets if t == "ChangeSetSealed"]

    def apply_to(self, mirror: bytearray) -> None:
        for record in self.extents():
            start, end = record["offset"], record["offset"] + record["length"]
            if record["op"] == "WRITE":
                data = record["data"]
                if record["compression"] == "LZ4":
                    data = lz4.frame.decompress(data)
                mirror[start:end] = data
            else:
                mirror[start:end] = bytes(record["length"])
