"""Replay a block I/O trace through a tracker, optionally applying the same writes to an image.

Traces carry no data and their offsets belong to much larger devices, so each write is mapped:

- the offset is taken modulo the volume size, then aligned down to the volume's block size;
- the size is rounded up to whole blocks, then clipped at the volume end (never wrapped);
- the content is generated from the record number and the seed, so two runs publish equal bytes.

Reads are skipped (counted). With `image`, every write goes to the image first (after
`tracker.intent`, as the tracker contract asks), so the image is the source a mirror can be
verified against.
"""

from __future__ import annotations

import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tidemark.core.blocks import Extent, split
from tidemark.core.image_io import pwrite_full

from .exceptions import TrackerError
from .image_file import open_volume_image
from .progress import progress_bar
from .traces import TraceRecord
from .tracker_api import WriteTracker

MAPPING = (
    "offset modulo the volume size, aligned down to the block size; "
    "size rounded up to whole blocks and clipped at the volume end"
)
DEFAULT_MAX_IN_FLIGHT = 64
_SEED_STRIDE = 1_000_003


@dataclass
class ReplayStats:
    records: int = 0
    writes: int = 0
    reads_skipped: int = 0
    empty_writes_skipped: int = 0
    wrapped_writes: int = 0
    """Writes whose trace offset lay beyond the volume and were mapped modulo its size."""
    widened_writes: int = 0
    """Writes whose offset or size was not block-aligned."""
    clipped_writes: int = 0
    clipped_bytes: int = 0
    bytes_published: int = 0
    """Bytes submitted, after mapping."""
    events: int = 0
    """`submit_write` calls (one per write, or one per piece when split at `max_extent`)."""
    elapsed: float = 0.0
    mapping: str = field(default=MAPPING)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def map_write(offset: int, size: int, volume_size: int, block_size: int) -> tuple[Extent, int]:
    """The volume extent a trace write lands on, and how many bytes were clipped at the end."""
    start = offset % volume_size
    start -= start % block_size
    length = -(-size // block_size) * block_size
    kept = min(length, volume_size - start)
    return Extent(start, kept), length - kept


def content(seed: int, number: int, length: int) -> bytes:
    """Deterministic pseudo-random bytes for one record (fast: Mersenne Twister, not a hash)."""
    return random.Random(seed * _SEED_STRIDE + number).randbytes(length)


class _Pacer:
    """Sleeps until a record's trace time, scaled by `speed` (None: never sleeps)."""

    def __init__(self, speed: float | None, clock: Callable[[], float], sleep: Callable[[float], None]):
        if speed is not None and not speed > 0:
            raise TrackerError(f"replay speed must be a positive factor or max, not {speed}")
        self._speed = speed
        self._clock = clock
        self._sleep = sleep
        self._start = clock()

    def wait_for(self, trace_time: float) -> None:
        if self._speed is None:
            return
        delay = trace_time / self._speed - (self._clock() - self._start)
        if delay > 0:
            self._sleep(delay)


class _Image:
    """The local source image; writes go here before they are submitted."""

    def __init__(self, path: Path, volume_size: int, volume: str):
        self._fd = open_volume_image(path, volume, volume_size, writable=True)

    def pwrite(self, offset: int, data: bytes) -> None:
        pwrite_full(self._fd, data, offset)

    def close(self) -> None:
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)


def replay(
    tracker: WriteTracker,
    records: Iterable[TraceRecord],
    *,
    image: Path | None = None,
    speed: float | None = None,
    seed: int = 0,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    max_extent: int | None = None,
    total: int | None = None,
    progress: bool | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayStats:
    """Publish every write record of `records` through `tracker`; see the module docstring.

    `speed`: 1.0 replays in real time from the trace timestamps, 10 ten times faster, None as
    fast as possible. At most `max_in_flight` submits wait for Kafka at once (the oldest is
    awaited first). `max_extent` (bytes, a block multiple) splits long writes into several
    submits; None leaves splitting to the tracker. `progress`: None shows a bar on a terminal.
    """
    if max_in_flight < 1:
        raise TrackerError(f"max_in_flight must be at least 1, not {max_in_flight}")
    block_size, volume_size = tracker.block_size, tracker.volume_size
    if max_extent is not None and (max_extent < block_size or max_extent % block_size):
        raise TrackerError(f"max_extent {max_extent} must be a positive multiple of the block size {block_size}")
    stats = ReplayStats()
    pending: deque[Future[None]] = deque()
    target = _Image(image, volume_size, tracker.volume_name) if image is not None else None
    pacer = _Pacer(speed, clock, sleep)
    started = clock()
    try:
        with progress_bar(f"replay {tracker.volume_name}", total, progress) as advance:
            for record in records:
                stats.records += 1
                advance(1)
                if not record.is_write:
                    stats.reads_skipped += 1
                    continue
                if record.size == 0:
                    stats.empty_writes_skipped += 1
                    continue
                pacer.wait_for(record.time)
                extent, clipped = map_write(record.offset, record.size, volume_size, block_size)
                _count(stats, record, extent, clipped, volume_size, block_size)
                data = content(seed, record.number, extent.length)
                pieces = split(extent.offset, extent.length, max_extent or extent.length)
                for piece in pieces:
                    chunk = data[piece.offset - extent.offset : piece.end - extent.offset]
                    if target is not None:
                        tracker.intent(piece.offset, piece.length)
                        target.pwrite(piece.offset, chunk)
                    while len(pending) >= max_in_flight:
                        pending.popleft().result()
                    pending.append(tracker.submit_write(piece.offset, chunk))
                    stats.events += 1
            while pending:
                pending.popleft().result()
    finally:
        if target is not None:
            target.close()
    stats.elapsed = clock() - started
    return stats


def _count(
    stats: ReplayStats, record: TraceRecord, extent: Extent, clipped: int, volume_size: int, block_size: int
) -> None:
    stats.writes += 1
    stats.bytes_published += extent.length
    if record.offset >= volume_size:
        stats.wrapped_writes += 1
    if record.offset % block_size or record.size % block_size:
        stats.widened_writes += 1
    if clipped:
        stats.clipped_writes += 1
        stats.clipped_bytes += clipped
