"""SYSTOR'17 enterprise VDI traces (SNIA IOTTA), CSV with a header.

Header `Timestamp,Response,IOType,LUN,Offset,Size`: seconds (float), seconds, R/W, LUN, bytes,
bytes. Rows are not strictly time-ordered, so the whole file is read and sorted by timestamp
(stable: equal timestamps keep file order). All LUNs are replayed into the one volume.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from .record import TraceRecord, malformed, numbered_lines, parse_float, parse_int

HEADER = ("timestamp", "response", "iotype", "lun", "offset", "size")
_TYPES = {"W": True, "R": False}


def parse(path: Path) -> Iterator[TraceRecord]:
    rows: list[tuple[float, int, bool, int, int]] = []
    with closing(numbered_lines(path)) as lines:
        for number, line in lines:
            fields = [field.strip() for field in line.split(",")]
            if tuple(field.lower() for field in fields) != HEADER:
                raise malformed(path, number, f"expected the header {','.join(HEADER)}", line)
            break
        for number, line in lines:
            fields = line.split(",")
            if len(fields) != len(HEADER):
                raise malformed(path, number, f"expected {len(HEADER)} comma-separated fields, got {len(fields)}", line)
            timestamp = parse_float(fields[0], "Timestamp", path, number, line)
            kind = _TYPES.get(fields[2].strip().upper())
            if kind is None:
                raise malformed(path, number, "IOType must be R or W", line)
            offset = parse_int(fields[4], "Offset", path, number, line)
            size = parse_int(fields[5], "Size", path, number, line)
            rows.append((timestamp, number, kind, offset, size))
    rows.sort(key=lambda row: row[0])
    start = rows[0][0] if rows else 0.0
    for timestamp, number, kind, offset, size in rows:
        yield TraceRecord(number, timestamp - start, kind, offset, size)
