"""The scan tracker: find changed blocks of an image by checksum, publish only those.

For sources where no write filter can sit (see the NBD tracker), each pass reads the image,
skipping holes (`holes.segments`), computes xxh3-64 per block and compares it with the map of
what was last published (`checksum_map.ChecksumMap`):

- the first (seeding) pass publishes every data block; holes publish nothing;
- later passes publish a block only when its digest changed; a block that held data and is now a
  hole is published as ZERO (a hole reads as zeros); unchanged blocks are never published;
- the map is updated only after Kafka confirmed a chunk's submits, so a crash makes the next pass
  publish those blocks again, never skip them.

Reads are timed; when their moving average exceeds the latency threshold, the scan sleeps
(`throttle.LatencyThrottle`) and reports the time spent throttled.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path

import xxhash

from tidemark.core.blocks import runs, runs_limited
from tidemark.core.image_io import pread_padded
from tidemark.core.metrics import StageMetrics
from tidemark.core.settings import DEFAULT_EXTENT_BYTES, MIB

from .checksum_map import ChecksumMap
from .exceptions import TrackerError
from .holes import Segment, segments
from .image_file import open_volume_image
from .progress import progress_bar
from .throttle import LatencyThrottle
from .tracker_api import WriteTracker


@dataclass(frozen=True)
class ScanOptions:
    chunk_bytes: int = 4 * MIB
    """Bytes read per pread (rounded down to whole blocks)."""
    max_extent_bytes: int = DEFAULT_EXTENT_BYTES
    """Longest run of changed blocks in one submit (keep it at the tracker's extent size)."""
    latency_threshold_ms: float | None = 20.0
    """Back off while the moving average of read latency exceeds this; None never backs off."""
    chunks_in_flight: int = 4
    """Chunks whose submits may await Kafka's confirmation at once."""


@dataclass
class PassStats:
    seeding: bool
    completed: bool = False
    blocks_scanned: int = 0
    hole_bytes_skipped: int = 0
    changed_blocks: int = 0
    zeroed_blocks: int = 0
    bytes_published: int = 0
    submits: int = 0
    throttled_seconds: float = 0.0
    elapsed: float = 0.0
    block_size: int = field(default=0, repr=False)

    @property
    def mb_per_s(self) -> float:
        """Data read per second of the pass (MB = 10^6 bytes), throttled time included."""
        if self.elapsed <= 0:
            return 0.0
        return self.blocks_scanned * self.block_size / self.elapsed / 1e6

    def as_dict(self) -> dict[str, object]:
        shown = asdict(self)
        del shown["block_size"]
        shown["mb_per_s"] = round(self.mb_per_s, 1)
        return shown


@dataclass
class _Chunk:
    """Submits awaiting confirmation, and the map changes to commit once they are confirmed."""

    futures: list[Future[None]]
    updates: dict[int, bytes | None]


class Scanner:
    def __init__(
        self,
        tracker: WriteTracker,
        image: Path,
        state_dir: Path,
        options: ScanOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._tracker = tracker
        self._bs = tracker.block_size
        self._options = options = options or ScanOptions()
        self._clock = clock
        self._sleep = sleep
        self._chunk_blocks = max(1, options.chunk_bytes // self._bs)
        self._run_blocks = max(1, options.max_extent_bytes // self._bs)
        self._zero_digest = xxhash.xxh3_64_digest(bytes(self._bs))
        self._fd = _open_image(image, tracker)
        try:
            self._map = ChecksumMap(state_dir, tracker.volume_name, tracker.volume_size, self._bs)
        except BaseException:
            os.close(self._fd)
            raise

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    def __enter__(self) -> Scanner:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run_pass(self, stop: threading.Event | None = None, progress: bool | None = None) -> PassStats:
        """One pass over the image; `stop` ends it after the current chunk (stats.completed False)."""
        stop = stop or threading.Event()
        stats = PassStats(seeding=not self._map.seeded, block_size=self._bs)
        threshold = self._options.latency_threshold_ms
        throttle = LatencyThrottle(None if threshold is None else threshold / 1000, sleep=self._sleep)
        started = self._clock()
        layout = list(segments(self._fd, self._tracker.volume_size, self._bs))
        data_blocks = sum(seg.length for seg in layout if seg.data) // self._bs
        pending: deque[_Chunk] = deque()
        enabled = progress if stats.seeding else False
        with progress_bar(f"seed {self._tracker.volume_name}", data_blocks, enabled) as advance:
            for segment in layout:
                if stop.is_set():
                    break
                if not segment.data:
                    stats.hole_bytes_skipped += segment.length
                    self._enqueue(pending, self._hole(segment, stats))
                    continue
                for offset in range(segment.offset, segment.end, self._chunk_blocks * self._bs):
                    if stop.is_set():
                        break
                    length = min(self._chunk_blocks * self._bs, segment.end - offset)
                    self._enqueue(pending, self._data(offset, length, stats, throttle))
                    advance(length // self._bs)
        while pending:
            self._settle(pending.popleft())
        stats.completed = not stop.is_set()
        if stats.completed and stats.seeding:
            self._map.mark_seeded()
        stats.throttled_seconds = throttle.throttled
        StageMetrics("scan", self._tracker.volume_name).throttled(throttle.throttled)
        stats.elapsed = self._clock() - started
        return stats

    def _data(self, offset: int, length: int, stats: PassStats, throttle: LatencyThrottle) -> _Chunk:
        began = self._clock()
        data = pread_padded(self._fd, length, offset)
        throttle.observe(self._clock() - began)
        first, count = offset // self._bs, length // self._bs
        stored = self._map.range(first, first + count)
        view = memoryview(data)
        updates: dict[int, bytes | None] = {}
        for index in range(count):
            digest = xxhash.xxh3_64_digest(view[index * self._bs : (index + 1) * self._bs])
            known = stored.get(first + index)
            if known is None and not stats.seeding:
                known = self._zero_digest
            if digest != known:
                updates[first + index] = digest
        stats.blocks_scanned += count
        futures: list[Future[None]] = []
        for run_first, run_count in runs_limited(sorted(updates), self._run_blocks):
            start = (run_first - first) * self._bs
            piece = bytes(view[start : start + run_count * self._bs])
            futures.append(self._tracker.submit_write(run_first * self._bs, piece))
            stats.submits += 1
            stats.changed_blocks += run_count
            stats.bytes_published += len(piece)
        return _Chunk(futures, updates)

    def _hole(self, segment: Segment, stats: PassStats) -> _Chunk:
        first = segment.offset // self._bs
        stored = self._map.range(first, first + segment.length // self._bs)
        updates: dict[int, bytes | None] = dict.fromkeys(stored)
        changed = [block for block, digest in stored.items() if digest != self._zero_digest]
        futures: list[Future[None]] = []
        for run_first, run_count in runs(changed):
            futures.append(self._tracker.submit_zero(run_first * self._bs, run_count * self._bs))
            stats.submits += 1
            stats.zeroed_blocks += run_count
        return _Chunk(futures, updates)

    def _enqueue(self, pending: deque[_Chunk], chunk: _Chunk) -> None:
        pending.append(chunk)
        while len(pending) > self._options.chunks_in_flight:
            self._settle(pending.popleft())

    def _settle(self, chunk: _Chunk) -> None:
        for future in chunk.futures:
            future.result()
        self._map.commit(chunk.updates)


def scan_forever(
    scanner: Scanner,
    interval: float | None,
    stop: threading.Event,
    report: Callable[[PassStats], None],
    progress: bool | None = None,
) -> None:
    """Run passes every `interval` seconds (None: one pass) until `stop` is set."""
    while True:
        report(scanner.run_pass(stop, progress))
        if interval is None or stop.wait(interval):
            return


def _open_image(image: Path, tracker: WriteTracker) -> int:
    volume, volume_size = tracker.volume_name, tracker.volume_size
    if volume_size % tracker.block_size:
        raise TrackerError(
            f"volume {volume!r} is {volume_size} bytes, not a multiple of its block size {tracker.block_size}"
        )
    return open_volume_image(image, volume, volume_size, writable=False)
