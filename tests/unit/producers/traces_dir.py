"""Trace files for tests: the shared samples when present, else generated traces of the same format.

The samples are looked up in TIDEMARK_TRACES_DIR, else <repo>/../shared/traces. Where a sample is
missing, `sample` writes a generated trace (`tidemark.producers.traces.synthetic`, fixed seed)
to a per-user temp folder, so no test skips for want of a sample, and `expected` gives the facts
the tests check for whichever file `sample` returned.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tidemark.producers.traces import TraceRecord
from tidemark.producers.traces.synthetic import synthetic_trace

REPO = Path(__file__).resolve().parents[3]

SAMPLES = {
    "msr": "msr-cambridge-hm0-sample/msr-cambridge1-sample.csv",
    "systor": "snia-systor17-vdi-sample/systor17-traces-sample.csv",
    "disksim": "mqsim-tpcc-small/tpcc-small.trace",
}
SYNTHETIC_SEED = 2026
SYNTHETIC_RECORDS = 1000


@dataclass(frozen=True)
class Expected:
    records: int
    writes: int
    first: TraceRecord
    """The earliest record, in the replayer's units (bytes, seconds)."""
    last_time: tuple[float, float]
    """Bounds of the last record's time (seconds since the first)."""


KNOWN_SAMPLES = {
    "msr": Expected(1000, 492, TraceRecord(1, 0.0, True, 9056014336, 2048), (120.0, 135.0)),
    "systor": Expected(999, 173, TraceRecord(3, 0.0, False, 4256049987072, 122880), (2.0, 3.0)),
    "disksim": Expected(6999, 2618, TraceRecord(1, 0.0, True, 264719034 * 512, 16 * 512), (0.1, 0.2)),
}


def _real(fmt: str) -> Path | None:
    root = Path(os.environ.get("TIDEMARK_TRACES_DIR") or REPO.parent / "shared" / "traces")
    path = root / SAMPLES[fmt]
    return path if path.is_file() else None


def sample(fmt: str) -> Path:
    """The shared sample of `fmt`, else a generated trace of `fmt` (the same file every time)."""
    real = _real(fmt)
    if real is not None:
        return real
    folder = Path(tempfile.gettempdir()) / f"tidemark-synthetic-traces-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    path = folder / f"{fmt}-{SYNTHETIC_SEED}-{SYNTHETIC_RECORDS}.trace"
    if not path.is_file():
        staging = folder / f".{path.name}.{os.getpid()}"
        synthetic_trace(fmt, SYNTHETIC_SEED, SYNTHETIC_RECORDS).write(staging)
        os.replace(staging, path)
    return path


def expected(fmt: str) -> Expected:
    """What parsing `sample(fmt)` must give."""
    if _real(fmt) is not None:
        return KNOWN_SAMPLES[fmt]
    records = synthetic_trace(fmt, SYNTHETIC_SEED, SYNTHETIC_RECORDS).records
    last = records[-1].time
    return Expected(len(records), sum(r.is_write for r in records), records[0], (last, last))
