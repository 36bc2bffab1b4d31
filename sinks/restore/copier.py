"""The background relocation: the point's pending blocks copied into the destination.

Runs of at most `run_bytes`: first the pending blocks of the volume's read profile (the blocks a
machine read first after it connected, see profile.py), then the others, each in block order.
Before each run the copier waits for the clients to pause (`ClientActivity.wait_quiet`), reads
the run from the point with no lock held, and hands it to `Destination.copy_run`, which skips
every block relocated meanwhile (a client's write wins).
With `max_bytes_per_second` it also sleeps to keep its reads of the point under that rate (a cap
on the bandwidth it takes from the mirror's storage and the destination).

Every `sync_bytes` copied, and at the end, `Destination.sync` makes the copies durable and then
records them; a crash loses at most the copies since the last sync, which the next run redoes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

from pyroaring import BitMap

from tidemark.core.blocks import runs_limited
from tidemark.core.metrics import StageMetrics
from tidemark.core.progress import OnProgress

from .activity import ClientActivity
from .destination import Destination
from .export import PointReader
from .plan import widened

RUN_BYTES = 1 << 20
SYNC_BYTES = 64 << 20

FirstBlocks = Callable[[], BitMap | None]  # the blocks to copy first, or None

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyOptions:
    run_bytes: int = RUN_BYTES
    sync_bytes: int = SYNC_BYTES
    max_bytes_per_second: float | None = None  # None: as fast as the clients leave room for


class Copier:
    def __init__(
        self,
        point: PointReader,
        destination: Destination,
        pending: BitMap,
        activity: ClientActivity,
        options: CopyOptions | None = None,
        metrics: StageMetrics | None = None,
        first: FirstBlocks | None = None,
    ) -> None:
        """`pending`: the blocks to copy (`plan.pending_blocks`); the destination's own bitmap
        decides, block by block at copy time, which of them still need it. `first`: the blocks to
        copy before the others (the read profile), asked for when the copy starts (it may wait
        for Kafka; the export serves meanwhile)."""
        self.point = point
        self.destination = destination
        self.pending = pending
        self.activity = activity
        self.options = options or CopyOptions()
        self.metrics = metrics  # counts the bytes copied, the time yielded to clients, the bytes left
        self.copied_blocks = 0
        self.prestaged = BitMap()  # the pending blocks of `first`, known once the run started
        self._first = first

    def run(self, stop: threading.Event, on_progress: OnProgress | None = None) -> bool:
        """Copy until done (True, everything durable) or until `stop` is set (False)."""
        bs = self.destination.block_size
        run_blocks = max(1, self.options.run_bytes // bs)
        profile = self._first() if self._first is not None else None
        if profile is not None:
            self.prestaged = self.pending & widened(profile, run_blocks)
            log.info(
                "copying the %d pending blocks of the read profile first (%d with their neighbours)",
                len(self.pending & profile), len(self.prestaged),
            )  # fmt: skip
        total, done, unsynced = len(self.pending), 0, 0
        rate, started = self.options.max_bytes_per_second, time.monotonic()
        rest = self.pending - self.prestaged
        for first, count in chain(runs_limited(self.prestaged, run_blocks), runs_limited(rest, run_blocks)):
            if rate is not None:
                stop.wait(max(0.0, started + done * bs / rate - time.monotonic()))
            if stop.is_set():
                self.destination.sync()
                return False
            waited = self.activity.wait_quiet()
            data = self.point.read(first * bs, count * bs)
            copied = self.destination.copy_run(first, data)
            self.copied_blocks += copied
            unsynced += copied * bs
            if unsynced >= self.options.sync_bytes:
                self.destination.sync()
                unsynced = 0
            done += count
            if self.metrics is not None:
                self.metrics.handled(0, copied * bs)
                self.metrics.throttled(waited)
                self.metrics.restore_remaining((total - done) * bs)
            if on_progress is not None:
                on_progress(done, total)
        self.destination.sync()
        return True
