"""DiskSim ASCII traces (as shipped with MQSim), space-separated.

Columns: `arrival_ns device lba size type`; lba and size count 512-byte sectors; type 0 is a
write and 1 a read. Records are in time order. All devices are replayed into the one volume
(their offsets overlap there; the replayer maps offsets modulo the volume size anyway).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from .record import TraceRecord, malformed, numbered_lines, parse_int

SECTOR_BYTES = 512
_FIELDS = 5
_NS_PER_SECOND = 1_000_000_000
_TYPES = {"0": True, "1": False}


def parse(path: Path) -> Iterator[TraceRecord]:
    start: int | None = None
    with closing(numbered_lines(path)) as lines:
        for number, line in lines:
            fields = line.split()
            if len(fields) != _FIELDS:
                raise malformed(path, number, f"expected {_FIELDS} space-separated fields, got {len(fields)}", line)
            arrival = parse_int(fields[0], "arrival_ns", path, number, line)
            parse_int(fields[1], "device", path, number, line)
            lba = parse_int(fields[2], "lba", path, number, line)
            sectors = parse_int(fields[3], "size", path, number, line)
            kind = _TYPES.get(fields[4])
            if kind is None:
                raise malformed(path, number, "type must be 0 (write) or 1 (read)", line)
            if start is None:
                start = arrival
            yield TraceRecord(
                number, (arrival - start) / _NS_PER_SECOND, kind, lba * SECTOR_BYTES, sectors * SECTOR_BYTES
            )
