"""Figure 4: what folding saves, on the real traces in ../shared/traces/ (no Kafka needed).

The processor's fold logic (`VolumeFolder`) runs in memory with a dict store and an emitter that
only counts: sub-interval 1 s, recovery point every 10 s, ticks every 0.25 s, all in trace time.
Writes are mapped into a 1 TiB volume the way `tidemark replay` maps them (offset modulo the
volume, aligned to 4 KiB; generated content) and split at the tracker's extent size.

- shipped / written: change-set bytes over the bytes the trace wrote (overwrites within a
  sub-interval collapse);
- cut / recovery point: bytes shipped by the seals that cut recovery points over the bytes the
  points changed (the cumulative sub-intervals leave only the last one for the cut).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from tidemark.core.blocks import split
from tidemark.processors.fold_volume import FoldOptions, VolumeFolder
from tidemark.processors.memory_journal import MemoryJournal
from tidemark.processors.volume_state import VolumeState
from tidemark.producers.replay import content, map_write
from tidemark.producers.traces import TraceRecord, read_trace

from .env import BenchEnv
from .results import INFO, Figure, ratio_at_most

TRACES = (
    ("msr-cambridge-hm0-sample/msr-cambridge1-sample.csv", "msr"),
    ("snia-systor17-vdi-sample/systor17-traces-sample.csv", "systor"),
    ("mqsim-tpcc-small/tpcc-small.trace", "disksim"),
)
VOLUME_BYTES = 1 << 40
BLOCK = 4096
TICK_S = 0.25
OPTIONS = FoldOptions(subinterval=1.0, rp_interval=10.0)
SHORT = FoldOptions(subinterval=0.25, rp_interval=10.0)  # for the note: what a shorter sub-interval does


def traces_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "shared" / "traces"


@dataclass
class Counts:
    """A recording emitter: adds up what the folder would publish."""

    shipped: int = 0
    cut_shipped: int = 0
    rp_changed: int = 0
    points: int = 0
    changesets: int = 0

    def changeset_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None:
        if record_type == "Extent":
            self.shipped += record["length"]
        elif record_type == "ChangeSetSealed":
            self.changesets += 1

    def recovery_point_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None:
        if record_type == "RecoveryPoint":
            self.points += 1
            self.cut_shipped += record["cut_bytes"]
            self.rp_changed += record["changed_bytes"]

    def metrics(self, volume: str, record: Mapping[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class FoldResult:
    trace: str
    written: int
    counts: Counts
    duration: float
    short: Counts


def fold(records: Iterable[TraceRecord], options: FoldOptions = OPTIONS) -> tuple[int, Counts, float]:
    counts = Counts()
    journal = MemoryJournal()
    folder = VolumeFolder({}, counts, options, journal)
    extent_bytes = options.extent_bytes
    state = VolumeState("trace", BLOCK, VOLUME_BYTES)
    written, seq, clock = 0, 0, 0.0
    for record in records:
        if not record.is_write or record.size == 0:
            continue
        while clock + TICK_S <= record.time:
            clock += TICK_S
            folder.on_tick(state, clock)
        extent, _clipped = map_write(record.offset, record.size, VOLUME_BYTES, BLOCK)
        data = content(0, record.number, extent.length)
        for piece in split(extent.offset, extent.length, extent_bytes):
            chunk = data[piece.offset - extent.offset : piece.end - extent.offset]
            event = {"seq": seq, "epoch": 1, "offset": piece.offset, "length": piece.length, "op": "WRITE",
                     "timestamp": int(record.time * 1e6), "checksum": xxhash.xxh3_64_digest(chunk)}  # fmt: skip
            folder.on_write(state, journal.append(event, chunk), event, record.time)
            seq += 1
            written += piece.length
    end = clock + options.rp_interval + options.subinterval
    while clock < end:  # let the last sub-interval seal and the last point be cut, on the clock
        clock += TICK_S
        folder.on_tick(state, clock)
    return written, counts, clock


def measure() -> list[FoldResult]:
    results = []
    for relative, fmt in TRACES:
        path = traces_dir() / relative
        written, counts, duration = fold(read_trace(path, fmt))
        _, short, _ = fold(read_trace(path, fmt), SHORT)
        results.append(FoldResult(relative.split("/")[0], written, counts, duration, short))
    return results


def figures(results: list[FoldResult]) -> list[Figure]:
    found = []
    for r in results:
        c = r.counts
        found.append(Figure("4", f"folding {r.trace}: shipped", c.shipped / 1e6, "MB", "bytes written",
                            r.written / 1e6, INFO,
                            [f"{c.changesets} change sets, {c.points} recovery points "
                             f"over {r.duration:.0f} s of trace time"]))  # fmt: skip
        found.append(Figure("4", f"folding {r.trace}: cut", c.cut_shipped / 1e6, "MB", "bytes in the recovery points",
                            c.rp_changed / 1e6, ratio_at_most(0.05),
                            [f"with a 0.25 s sub-interval the cut ratio is {_share(r.short):.3f}"]))  # fmt: skip
    return found


def _share(counts: Counts) -> float:
    return counts.cut_shipped / counts.rp_changed if counts.rp_changed else 0.0


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    return figures(measure())
