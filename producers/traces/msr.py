"""MSR Cambridge block traces (SNIA IOTTA), CSV without a header.

Columns: Timestamp (Windows FILETIME, 100 ns ticks), Hostname, DiskNumber, Type (Read/Write),
Offset (bytes), Size (bytes), ResponseTime (100 ns ticks). Records are in time order; times are
reported relative to the first record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from .record import TraceRecord, malformed, numbered_lines, parse_int

_TICKS_PER_SECOND = 10_000_000
_FIELDS = 7
_TYPES = {"write": True, "read": False}


def parse(path: Path) -> Iterator[TraceRecord]:
    start: int | None = None
    with closing(numbered_lines(path)) as lines:
        for number, line in lines:
            fields = line.split(",")
            if len(fields) != _FIELDS:
                raise malformed(path, number, f"expected {_FIELDS} comma-separated fields, got {len(fields)}", line)
            ticks = parse_int(fields[0], "Timestamp", path, number, line)
            kind = _TYPES.get(fields[3].strip().lower())
            if kind is None:
                raise malformed(path, number, "Type must be Read or Write", line)
            offset = parse_int(fields[4], "Offset", path, number, line)
            size = parse_int(fields[5], "Size", path, number, line)
            if start is None:
                start = ticks
            yield TraceRecord(number, (ticks - start) / _TICKS_PER_SECOND, kind, offset, size)
