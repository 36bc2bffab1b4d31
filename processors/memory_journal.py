"""A journal in memory: writes by journal offset, read back like the real one.

For folding without Kafka: the property tests and the folding benchmarks (figures 4 and 5).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .write_source import WriteData


class MemoryJournal:
    """A `WriteSource` that keeps every appended write (so only for bounded runs)."""

    def __init__(self) -> None:
        self.entries: dict[int, WriteData] = {}
        self.next_offset = 0
        self.reads = 0

    def append(self, record: dict[str, Any], data: bytes) -> int:
        """Journal a write; returns its offset."""
        offset = self.next_offset
        self.entries[offset] = WriteData(record["op"], record["offset"], record["length"], data)
        self.next_offset += 1
        return offset

    def skip(self) -> None:
        """Something else (a marker, a tick) takes the next offset."""
        self.next_offset += 1

    def writes(self, refs: Sequence[int]) -> Iterator[tuple[int, WriteData]]:
        assert list(refs) == sorted(set(refs)), "a seal asks in ascending journal order"
        for ref in refs:
            self.reads += 1
            yield ref, self.entries[ref]
