"""Figure 3: tracker -> `tidemark process` -> `tidemark mirror`, sustained MB/s and RPO lag.

The processor and the mirror run as CLI processes against a 1 TiB sparse volume (figure 7
reads their peak memory at the end); the tracker core runs here. "Applied" is read from the
mirror's progress file (`seq_last`, saved after the data is fsynced), polled every 5 ms.

Both measures run twice, with 64 KiB and with 4 KiB writes, each size on topics of its own with a
processor and a mirror of its own; figure 7 reads the 64 KiB run's processes.
- sustained: writes to distinct blocks as fast as the tracker takes them; MB/s from the
  first submit until the mirror applied the last write. Anchor: figure 1's ProducerPerformance
  rate for the same record size (what the broker takes from one producer at all).
- RPO lag: at half the sustained rate, per write, from Kafka's acknowledgement at the tracker to
  the mirror having applied it; p50 and p99, and where it goes (lag_breakdown.py). The processor
  runs with its default settings.
"""

from __future__ import annotations

import bisect
import json
import os
import statistics
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from tidemark.processors.fold_volume import FoldOptions
from tidemark.processors.runner import ProcessorOptions
from tidemark.producers.tracker import Tracker, TrackerOptions
from tidemark.sinks.layout import MirrorLayout

from . import ingest, memory
from .env import MIB, BenchEnv, Stage, stop_process
from .lag_breakdown import STAGES, SealWatcher
from .results import INFO, Figure, ratio_at_least, value_at_most

VOLUME_BYTES = 1 << 40
# MiB written in the sustained phase per write size, (quick, full)
SUSTAINED_MIB = {65536: (256, 1024), 4096: (64, 256)}
POLL_S = 0.005
APPLY_TIMEOUT_S = 180.0


class AppliedWatcher:
    """Polls the mirror's progress file; records when each new `seq_last` became visible."""

    def __init__(self, progress: Path) -> None:
        self.progress = progress
        self.times: list[float] = []
        self.seqs: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="applied-watcher", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        last = -1
        while not self._stop.wait(POLL_S):
            try:
                seq = json.loads(self.progress.read_text()).get("seq_last")
            except (OSError, ValueError):
                continue
            if seq is not None and seq > last:
                self.times.append(time.monotonic())
                self.seqs.append(seq)
                last = seq

    def applied_at(self, seq: int) -> float | None:
        index = bisect.bisect_left(self.seqs, seq)
        return self.times[index] if index < len(self.seqs) else None

    def wait(self, seq: int, what: str) -> float:
        deadline = time.monotonic() + APPLY_TIMEOUT_S
        while (found := self.applied_at(seq)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the mirror did not apply seq {seq} ({what}) within {APPLY_TIMEOUT_S:.0f} s")
            time.sleep(POLL_S)
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Writer:
    """Distinct blocks of `size` bytes, one event (one seq) per write."""

    def __init__(self, tracker: Tracker, size: int) -> None:
        self.tracker = tracker
        self.size = size
        self.data = os.urandom(size)
        self.next_offset = 0
        self.written = 0

    def submit(self) -> tuple[int, Future[None]]:
        future = self.tracker.submit_write(self.next_offset, self.data)
        self.next_offset += self.size
        self.written += self.size
        return self.tracker.stats.last_seq, future


def sustained(writer: Writer, watcher: AppliedWatcher, total: int) -> float:
    window = 32 * MIB // writer.size
    pending: deque[Future[None]] = deque()
    started = time.monotonic()
    seq = -1
    for _ in range(total // writer.size):
        seq, future = writer.submit()
        pending.append(future)
        if len(pending) > window:
            pending.popleft().result(60)
    applied = watcher.wait(seq, "end of the sustained phase")
    return total / (applied - started) / 1e6


Times = dict[int, float]
"""seq -> wall-clock time (time.time())"""


def lag(writer: Writer, watcher: AppliedWatcher, mb_s: float, seconds: float) -> tuple[list[float], Times, Times]:
    """Paced writes at `mb_s`; per write, applied-at-mirror minus acknowledged-at-tracker (s); then
    the acknowledgement and application times of every write, on the wall clock (lag_breakdown.py)."""
    interval = writer.size / (mb_s * 1e6)
    acks: dict[int, float] = {}
    seqs: list[int] = []
    due = time.monotonic()
    end = due + seconds
    while due < end:
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        seq, future = writer.submit()

        def acked(_: Future[None], seq: int = seq) -> None:
            acks[seq] = time.monotonic()

        future.add_done_callback(acked)
        seqs.append(seq)
        due += interval
    watcher.wait(seqs[-1], "end of the lag phase")
    applied = {s: watcher.wait(s, "the lag phase") for s in seqs}  # each applied by now: no waiting
    wall = time.time() - time.monotonic()
    lags = [applied[s] - acks[s] for s in seqs]
    return lags, {s: acks[s] + wall for s in seqs}, {s: applied[s] + wall for s in seqs}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(env: BenchEnv, stage: Stage, write_bytes: int, quick: bool) -> list[Figure]:
    anchor = ingest.kafka_mb_s(env, stage, write_bytes, quick)
    spec = stage.register("e2e", VOLUME_BYTES)
    processor = stage.cli("process", log=stage.root / "process.log")
    mirror = stage.cli("mirror", "--volume", spec.name, "--path", str(stage.root / "mirror.img"),
                       log=stage.root / "mirror.log")  # fmt: skip
    watcher = AppliedWatcher(MirrorLayout.of(stage.settings.state_dir, "default", spec.name).progress)
    options = TrackerOptions(extent_bytes=stage.settings.extent_bytes)
    folder = stage.settings.volume_state_dir("trackers", spec.name)
    peaks: dict[str, float] = {}
    seals: SealWatcher | None = None
    try:
        with Tracker(spec, stage.clients, stage.topics, folder, None, options).start() as tracker:
            writer = Writer(tracker, write_bytes)
            seq, future = writer.submit()
            future.result(60)
            watcher.wait(seq, "warm-up: processor and mirror starting")
            rate = sustained(writer, watcher, SUSTAINED_MIB[write_bytes][0 if quick else 1] * MIB)
            seals = SealWatcher(stage, spec.name)
            lags, acked, applied = lag(writer, watcher, rate / 2, 15.0 if quick else 40.0)
        for name, process in (("process", processor), ("mirror", mirror)):
            if process.poll() is not None:
                raise RuntimeError(f"tidemark {name} exited early ({process.returncode}); see {stage.root}/{name}.log")
            peaks[name] = memory.peak_rss_mb(process.pid)
    finally:
        watcher.close()
        if seals is not None:
            seals.close()
        stop_process(processor)
        stop_process(mirror)
    assert seals is not None
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    split = "p50 / p99 per stage: " + ", ".join(
        f"{name} {percentile(values, 50):.3f} / {percentile(values, 99):.3f} s"
        for name, values in zip(STAGES, seals.stages(acked, applied), strict=True)
        if values
    )
    fold = FoldOptions()
    size = f"{write_bytes // 1024} KiB"
    note = (f"{len(lags)} writes of {size} at {rate / 2:.1f} MB/s; processor defaults (sub-interval "
            f"{fold.subinterval:g} s, ticks every {ProcessorOptions.tick_interval:g} s)")  # fmt: skip
    figures = [
        Figure("3", f"end to end, {size} writes: sustained tracker -> applied at mirror", rate, "MB/s",
               f"ProducerPerformance {size} (figure 1)", anchor, ratio_at_least(0.5)),
        Figure("3", f"end to end, {size} writes: RPO lag p50 at half rate", p50, "s", "goal", 1.0, INFO, [note]),
        Figure("3", f"end to end, {size} writes: RPO lag p99 at half rate", p99, "s", "goal", 1.0,
               value_at_most(1.0, "s"), [f"mean {statistics.fmean(lags):.3f} s, max {max(lags):.3f} s", split]),
    ]  # fmt: skip
    if write_bytes == 65536:
        figures += memory.figures(peaks, VOLUME_BYTES, writer.written)
    return figures


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    figures = []
    for write_bytes in SUSTAINED_MIB:
        with env.stage(f"e2e-{write_bytes // 1024}k") as stage:
            figures += measure(env, stage, write_bytes, quick)
    return figures
