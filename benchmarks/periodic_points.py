"""Figure 12: periodic recovery points keep coming under a sustained 100 MB/s seed.

Under a steady stream every sub-interval seals by size (32 MiB at 100 MB/s is a third of a
second), and before #12 no periodic point was ever cut that way. The rule now: when a point is
due, the next seal, whatever its cause, is the cut, and the next tick (every 0.1 s) seals whatever
is open for it. So two points are the rp-interval plus the wait for the next tick apart, well
inside the bound of the rp-interval plus one sub-interval.

The tracker core writes distinct 64 KiB blocks, paced at 100 MB/s on the wall clock (a seed), into
a volume the processor (`tidemark process`, defaults) folds. The processor decides in log time
(message timestamps), so it may fall behind while it reads and the cadence is still judged on the
writes' own times. The points are read back with `tidemark rp list --json` once the processor has
caught up. The figure is the longest gap between consecutive points cut while the seed ran
(`created_at`, the log time of the cut), against the bound; the achieved write rate is context.
The bound holds as long as some message (a write or a tick) reaches the partition within one
sub-interval of the due time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import Future

from tidemark.processors.fold_volume import FoldOptions
from tidemark.producers.tracker import Tracker, TrackerOptions

from .env import GIB, MIB, BenchEnv, Stage, stop_process
from .results import INFO, Figure, ratio_at_most

TARGET_MB_S = 100.0
WRITE = 65536
VOLUME_BYTES = 64 * GIB
SECONDS = float(os.environ.get("TIDEMARK_BENCH_PERIODIC_S", "60"))
QUICK_SECONDS = 20.0
SETTLE_S = 20.0  # no new point for this long after the seed: the processor has caught up
CATCH_UP_TIMEOUT_S = 300.0


def seed(tracker: Tracker, seconds: float) -> tuple[float, float, int]:
    """Distinct 64 KiB writes paced at TARGET_MB_S: (wall start, wall end, bytes), all confirmed."""
    data = os.urandom(WRITE)
    interval = WRITE / (TARGET_MB_S * 1e6)
    pending: deque[Future[None]] = deque()
    window = 64 * MIB // WRITE
    offset = written = 0
    started = time.time()
    due, end = time.monotonic(), time.monotonic() + seconds
    while due < end and time.monotonic() < end:  # behind the pace, the seed still ends on time
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pending.append(tracker.submit_write(offset, data))
        if len(pending) > window:
            pending.popleft().result(60)
        offset = (offset + WRITE) % VOLUME_BYTES
        written += WRITE
        due += interval
    finished = time.time()
    while pending:
        pending.popleft().result(60)
    return started, finished, written


def points(stage: Stage, volume: str) -> list[int]:
    """The volume's recovery points' cut times (ms, log time), oldest first."""
    done = subprocess.run(
        [sys.executable, "-m", "tidemark.cli", "rp", "list", "--volume", volume, "--json"],
        env=stage.cli_env(), capture_output=True, text=True, timeout=120, check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return sorted(row["created_at_ms"] for row in json.loads(done.stdout)["points"])


def caught_up(stage: Stage, volume: str, after_ms: float) -> list[int]:
    """Poll the points until one is cut after the seed ended and no new one came for SETTLE_S."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    found, since = points(stage, volume), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(2.0)
        now = points(stage, volume)
        if len(now) != len(found):
            found, since = now, time.monotonic()
        elif found and found[-1] >= after_ms and time.monotonic() - since >= SETTLE_S:
            return found
    raise RuntimeError(f"the processor did not cut a point after the seed within {CATCH_UP_TIMEOUT_S:.0f} s")


def measure(stage: Stage, quick: bool) -> list[Figure]:
    spec = stage.register("periodic", VOLUME_BYTES)
    processor = stage.cli("process", log=stage.root / "process.log")
    options = TrackerOptions(extent_bytes=stage.settings.extent_bytes)
    folder = stage.settings.volume_state_dir("trackers", spec.name)
    try:
        with Tracker(spec, stage.clients, stage.topics, folder, None, options).start() as tracker:
            started, finished, written = seed(tracker, QUICK_SECONDS if quick else SECONDS)
        cuts = caught_up(stage, spec.name, finished * 1000)
        if processor.poll() is not None:
            raise RuntimeError(f"tidemark process exited early ({processor.returncode}); see {stage.root}/process.log")
    finally:
        stop_process(processor)
    during = [t for t in cuts if started * 1000 <= t <= finished * 1000]
    if len(during) < 2:
        raise RuntimeError(f"{len(during)} points cut during the seed: too short to measure a gap between two")
    gaps = [(b - a) / 1000 for a, b in zip(during, during[1:], strict=False)]
    longest = max(gaps)
    head, tail = (during[0] - started * 1000) / 1000, (finished * 1000 - during[-1]) / 1000
    fold = FoldOptions()
    bound = fold.rp_interval + fold.subinterval
    rate = written / (finished - started) / 1e6
    return [
        Figure("12", "periodic points under a sustained seed: longest gap between points", longest, "s",
               "rp-interval + one sub-interval", bound, ratio_at_most(1.0),
               [f"{len(during)} points cut during {finished - started:.0f} s of seeding; rp-interval "
                f"{fold.rp_interval:g} s, sub-interval {fold.subinterval:g} s or "
                f"{fold.subinterval_max_bytes >> 20} MiB; gaps between points (s): "
                + ", ".join(f"{gap:.2f}" for gap in gaps)
                + f"; seed start -> first point {head:.2f} s, last point -> seed end {tail:.2f} s"]),
        Figure("12", "periodic points: seed rate achieved by the tracker", rate, "MB/s", "target", TARGET_MB_S, INFO,
               [f"{written / GIB:.1f} GiB of distinct 64 KiB writes, paced on the wall clock"]),
    ]  # fmt: skip


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    with env.stage("periodic") as stage:
        return measure(stage, quick)
