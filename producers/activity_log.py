"""Write-ahead record of the regions a tracker may be writing (after DRBD's activity log).

A front end calls `enter` before it modifies the source image. The region's index is made durable
only when it was not already active, so steady writes cost no fsync. A region leaves the log
lazily: only when no submitted write in it is pending and nothing touched it for `idle_seconds`
(a front end submits what it wrote within milliseconds, so a region is never dropped between the
image write and the submit). After a crash, every region still in the log may hold image content
that never reached Kafka: the restarted tracker publishes those regions again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from pyroaring import BitMap

from tidemark.core.durable import read_or, write_durably


class ActivityLog:
    def __init__(
        self, path: Path, region_bytes: int, max_idle_regions: int = 64, idle_seconds: float = 5.0
    ) -> None:
        self.path = path
        self.region_bytes = region_bytes
        self.max_idle_regions = max_idle_regions
        self.idle_seconds = idle_seconds
        raw = read_or(path, b"")
        self._durable = BitMap.deserialize(raw) if raw else BitMap()
        self._pending: Counter[int] = Counter()
        self._touched: dict[int, float] = {}
        self._lock = threading.Lock()

    def recovered_regions(self) -> BitMap:
        """Regions active when the previous tracker stopped (all of them, if it crashed)."""
        with self._lock:
            return BitMap(self._durable)

    def regions_of(self, offset: int, length: int) -> range:
        if length <= 0:
            return range(0)
        return range(offset // self.region_bytes, (offset + length - 1) // self.region_bytes + 1)

    def enter(self, offset: int, length: int) -> None:
        """Before the image changes: make the regions durable in the log."""
        now = time.monotonic()
        with self._lock:
            regions = self.regions_of(offset, length)
            for region in regions:
                self._touched[region] = now
            missing = [r for r in regions if r not in self._durable]
            if missing:
                self._durable.update(missing)
                self._trim_idle(now)
                write_durably(self.path, self._durable.serialize())

    def submitted(self, offset: int, length: int) -> None:
        now = time.monotonic()
        with self._lock:
            for region in self.regions_of(offset, length):
                self._pending[region] += 1
                self._touched[region] = now

    def settled(self, offset: int, length: int) -> None:
        """The submitted write is on Kafka or in the dirty bitmap."""
        with self._lock:
            for region in self.regions_of(offset, length):
                self._pending[region] -= 1
                if self._pending[region] <= 0:
                    del self._pending[region]

    def forget(self, regions: BitMap) -> None:
        """Drop recovered regions once their content was republished."""
        with self._lock:
            self._durable.difference_update(BitMap(r for r in regions if r not in self._pending))
            write_durably(self.path, self._durable.serialize())

    def close(self) -> None:
        """A clean stop with nothing pending: nothing needs republishing next time."""
        with self._lock:
            if not self._pending:
                self._durable = BitMap()
                self._touched.clear()
                write_durably(self.path, self._durable.serialize())

    def _trim_idle(self, now: float) -> None:
        idle = [
            r
            for r in self._durable
            if r not in self._pending and now - self._touched.get(r, 0.0) > self.idle_seconds
        ]
        excess = len(idle) - self.max_idle_regions
        if excess > 0:
            drop = sorted(idle, key=lambda r: self._touched.get(r, 0.0))[:excess]
            self._durable.difference_update(BitMap(drop))
            for region in drop:
                self._touched.pop(region, None)
