"""Generated traces in the three supported formats, for demos and tests without sample traces.

Each generator returns the text of a trace file together with the records `read_trace` must
yield for it (replay order, line numbers, seconds since the earliest record), so a generated
trace is also a test of its parser. The same `random.Random` state gives the same text.

Shapes: offsets within the first GiB, 60 % writes (MSR), about 20 % (SYSTOR) and 40 % (DiskSim),
sizes of 0.5 to 64 KiB. A SYSTOR file starts with its second-earliest row and has some rows out of
order (as the real VDI traces do), so the parser's sort is exercised.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .record import TraceRecord

GIB = 1 << 30
SECTOR = 512
_MSR_TICKS_PER_SECOND = 10_000_000
_MSR_EPOCH_TICKS = 128_166_372_000_000_000
_SYSTOR_EPOCH_US = 1_456_095_145_000_000
_DISKSIM_EPOCH_NS = 938_513_000
SYSTOR_HEADER = "Timestamp,Response,IOType,LUN,Offset,Size"


@dataclass(frozen=True)
class SyntheticTrace:
    fmt: str
    text: str
    records: list[TraceRecord]
    """What `read_trace(<file with text>, fmt)` yields."""

    def write(self, path: Path) -> Path:
        path.write_text(self.text, encoding="ascii")
        return path


def msr_trace(rng: random.Random, records: int) -> SyntheticTrace:
    """MSR Cambridge CSV lines (FILETIME ticks, host, disk, type, offset, size, response)."""
    ticks, lines, parsed = _MSR_EPOCH_TICKS, [], []
    start: int | None = None
    for number in range(1, records + 1):
        ticks += rng.randint(1_000, 200_000)
        start = ticks if start is None else start
        is_write = rng.random() < 0.6
        offset = rng.randrange(0, GIB, 4096)
        size = rng.choice((4096, 8192, 65536))
        kind = "Write" if is_write else "Read"
        lines.append(f"{ticks},hm,0,{kind},{offset},{size},{rng.randint(100, 9000)}")
        parsed.append(TraceRecord(number, (ticks - start) / _MSR_TICKS_PER_SECOND, is_write, offset, size))
    return SyntheticTrace("msr", _text(lines), parsed)


def systor_trace(rng: random.Random, records: int) -> SyntheticTrace:
    """SYSTOR'17 CSV with its header; seconds with microseconds, offsets and sizes in bytes."""
    rows: list[tuple[int, bool, int, int]] = []
    micros = _SYSTOR_EPOCH_US
    for _ in range(records):
        micros += rng.randint(1, 5_000)
        size = rng.randrange(1, 129) * SECTOR
        rows.append((micros, rng.random() < 0.2, rng.randrange(0, GIB, SECTOR), size))
    for index in range(2, len(rows) - 1):
        if rng.random() < 0.1:
            rows[index], rows[index + 1] = rows[index + 1], rows[index]
    if len(rows) > 1:
        rows[0], rows[1] = rows[1], rows[0]
    lines = [SYSTOR_HEADER]
    for micros, is_write, offset, size in rows:
        timestamp = f"{micros // 1_000_000}.{micros % 1_000_000:06d}000"
        response = f"0.000{rng.randint(100, 999)}000"
        lines.append(f"{timestamp},{response},{'W' if is_write else 'R'},{rng.randint(0, 2)},{offset},{size}")
    numbered = sorted(
        ((float(line.split(",")[0]), number, line) for number, line in enumerate(lines[1:], start=2)),
        key=lambda row: row[0],
    )
    start = numbered[0][0] if numbered else 0.0
    parsed = []
    for stamp, number, line in numbered:
        fields = line.split(",")
        parsed.append(TraceRecord(number, stamp - start, fields[2] == "W", int(fields[4]), int(fields[5])))
    return SyntheticTrace("systor", _text(lines), parsed)


def disksim_trace(rng: random.Random, records: int) -> SyntheticTrace:
    """DiskSim ASCII lines: arrival ns, device, lba and size in sectors, type (0 write, 1 read)."""
    arrival, lines, parsed = _DISKSIM_EPOCH_NS, [], []
    start: int | None = None
    for number in range(1, records + 1):
        arrival += rng.randint(1_000, 100_000)
        start = arrival if start is None else start
        lba = rng.randrange(0, GIB // SECTOR)
        sectors = rng.choice((8, 16, 32, 128))
        is_write = rng.random() < 0.4
        lines.append(f"{arrival} {rng.randint(0, 7)} {lba} {sectors} {0 if is_write else 1}")
        seconds = (arrival - start) / 1_000_000_000
        parsed.append(TraceRecord(number, seconds, is_write, lba * SECTOR, sectors * SECTOR))
    return SyntheticTrace("disksim", _text(lines), parsed)


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


GENERATORS: dict[str, Callable[[random.Random, int], SyntheticTrace]] = {
    "msr": msr_trace,
    "systor": systor_trace,
    "disksim": disksim_trace,
}


def synthetic_trace(fmt: str, seed: int, records: int) -> SyntheticTrace:
    """A generated trace of `fmt` (a key of GENERATORS): the same seed gives the same trace."""
    return GENERATORS[fmt](random.Random(seed), records)
