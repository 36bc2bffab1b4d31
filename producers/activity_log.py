"""The durable activity log (AL): regions of the image that may hold writes not yet on Kafka.

After DRBD's activity log. The image is cut into regions of `region_bytes` (default 4 MiB); the
log is a bounded set of at most `capacity` regions (DRBD's al-extents, default 1237), kept in a
file of region slots updated in place (`region_slots`): one fdatasync per region entering.

Invariants:
- A region enters the log (a durable write of the file) before the image changes in it
  (`enter`, called by a front end's `intent`), and again before a write in it is acknowledged
  if it left the log meanwhile (`hold`). Writes to a region already in the log cost no I/O.
- A region leaves the log only when (1) no event of it is unshipped (`hold` counts, `release`
  uncounts: an event is shipped when Kafka confirmed it or its blocks are in the dirty bitmap),
  (2) `durable_hook` ran after that: it makes the image durable (fdatasync after the region's
  last write) and persists the dirty bitmap, and (3) nothing touched the region since the hook
  started. So after a crash every block that may be missing on Kafka is either in a region of
  the log or in the durable dirty bitmap, and the image holds what Kafka holds.
- A region is touched by `enter` and `hold`. It is idle once untouched for `guard_seconds`;
  only idle regions leave. The guard covers a front end's `intent` -> image write -> `hold`
  (or, when the tracker is ahead, the mark in the dirty bitmap that replaces the event),
  which takes microseconds; a write whose region left anyway is re-entered by `hold` (by
  `enter` after the mark when ahead).

`retire_idle` (a tracker thread, every second) retires regions untouched for `idle_seconds`.
When the log is full, `enter` of a new region evicts the coldest idle regions itself, waiting
until some are idle if none is (a write to a new region waits for an eviction, as in DRBD).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pyroaring import BitMap

from .exceptions import TrackerError
from .region_slots import RegionSlots

DEFAULT_REGION_BYTES = 4 * 1024 * 1024
DEFAULT_CAPACITY = 1237
DEFAULT_IDLE_SECONDS = 30.0
DEFAULT_GUARD_SECONDS = 1.0
ROOM_TIMEOUT_SECONDS = 600.0
_NEVER = (float("-inf"), 0)


class ActivityLog:
    def __init__(
        self,
        path: Path,
        region_bytes: int = DEFAULT_REGION_BYTES,
        *,
        capacity: int = DEFAULT_CAPACITY,
        durable_hook: Callable[[], None] = lambda: None,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        guard_seconds: float = DEFAULT_GUARD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise TrackerError(f"activity log {path}: capacity must be at least 1 region, not {capacity}")
        self.path = path
        self.region_bytes = region_bytes
        self.capacity = capacity
        self.durable_hook = durable_hook
        self.idle_seconds = idle_seconds
        self.guard_seconds = guard_seconds
        self._clock = clock
        self._slots = RegionSlots(path, capacity)
        self._durable = BitMap(self._slots.recovered)
        self._recovered = BitMap(self._durable)
        self._pending: Counter[int] = Counter()
        self._touched: dict[int, tuple[float, int]] = {}  # region -> (clock, touch number)
        self._touches = 0
        self._changed = threading.Condition(threading.Lock())

    def __len__(self) -> int:
        with self._changed:
            return len(self._durable)

    def recovered_regions(self) -> BitMap:
        """Regions in the log when this tracker started (all of the previous one's, if it crashed)."""
        return BitMap(self._recovered)

    def regions_of(self, offset: int, length: int) -> range:
        if length <= 0:
            return range(0)
        return range(offset // self.region_bytes, (offset + length - 1) // self.region_bytes + 1)

    def enter(self, offset: int, length: int) -> None:
        """Before the image changes: the range's regions durable in the log."""
        with self._changed:
            self._enter(self.regions_of(offset, length))

    def enter_all(self, ranges: list[tuple[int, int]]) -> None:
        """`enter` of several ranges (offset, length) at once."""
        if not ranges:
            return
        with self._changed:
            self._enter_union(ranges)

    def hold(self, offset: int, length: int) -> None:
        """An event of the range is unshipped: its regions are in the log and stay until `release`.

        A range inside one region already in the log (the common case) is touched and counted
        here directly, as `hold_all` would; any other goes through `hold_all`."""
        size = self.region_bytes
        region = offset // size
        if length <= 0 or (offset + length - 1) // size != region:
            self.hold_all([(offset, length)])
            return
        with self._changed:
            if region in self._durable:
                now = self._clock()
                self._touches += 1
                self._touched[region] = (now, self._touches)
            else:
                self._enter([region])
            self._pending[region] += 1

    def hold_all(self, ranges: list[tuple[int, int]]) -> None:
        """`hold` of several ranges (offset, length) at once (each counts, like one `hold` each);
        none is held if it raises."""
        if not ranges:
            return
        with self._changed:
            self._enter_union(ranges)
            pending = self._pending
            size = self.region_bytes
            for offset, length in ranges:
                if length <= 0:
                    continue
                first, last = offset // size, (offset + length - 1) // size
                pending[first] += 1
                for region in range(first + 1, last + 1):
                    pending[region] += 1

    def release(self, offset: int, length: int) -> None:
        """The held event was confirmed by Kafka, or its blocks are in the dirty bitmap."""
        self.release_all([(offset, length)])

    def release_all(self, ranges: list[tuple[int, int]]) -> None:
        """`release` of several ranges (offset, length) at once."""
        if not ranges:
            return
        size = self.region_bytes
        with self._changed:
            pending = self._pending
            for offset, length in ranges:
                if length <= 0:
                    continue
                for region in range(offset // size, (offset + length - 1) // size + 1):
                    left = pending[region] - 1
                    if left > 0:
                        pending[region] = left
                    else:
                        pending.pop(region, None)
            self._changed.notify_all()

    def unshipped_regions(self) -> int:
        with self._changed:
            return len(self._pending)

    def retire_idle(self) -> int:
        """Retire every region untouched for `idle_seconds` with nothing unshipped; how many left."""
        with self._changed:
            now = self._clock()
            idle = [r for r in self._durable if self._retirable(r, now, self.idle_seconds)]
            if not idle:
                return 0
            return self._retire(idle)

    def forget(self, regions: BitMap) -> None:
        """Drop recovered regions once their blocks are in the durable dirty bitmap."""
        with self._changed:
            leaving = BitMap(r for r in regions if r not in self._pending) & self._durable
            self._durable.difference_update(leaving)
            self._slots.remove(leaving)
            self._recovered = BitMap()

    def close(self) -> bool:
        """A clean stop: empty the log when nothing is unshipped (after the hook). True if emptied."""
        with self._changed:
            try:
                if self._pending:
                    return False
                self.durable_hook()
                if self._pending:
                    return False
                self._durable = BitMap()
                self._touched.clear()
                self._slots.clear()
                return True
            finally:
                self._slots.close()

    # -- under the condition's lock ------------------------------------------------------------
    def _enter_union(self, ranges: list[tuple[int, int]]) -> None:
        """`_enter` of every region of the ranges, as one set when it fits the log."""
        size = self.region_bytes
        regions: dict[int, None] = {}
        for offset, length in ranges:
            if length <= 0:
                continue
            first, last = offset // size, (offset + length - 1) // size
            regions[first] = None
            if last != first:
                regions.update(dict.fromkeys(range(first + 1, last + 1)))
        if len(regions) <= self.capacity:
            self._enter(list(regions))
            return
        for offset, length in ranges:
            self._enter(self.regions_of(offset, length))

    def _enter(self, regions: range | list[int]) -> None:
        if len(regions) > self.capacity:
            raise TrackerError(
                f"activity log {self.path}: a write over {len(regions)} regions of {self.region_bytes} bytes "
                f"exceeds its capacity of {self.capacity} regions; raise the capacity (al-extents)"
            )
        now = self._clock()
        for region in regions:
            self._touches += 1
            self._touched[region] = (now, self._touches)
        missing = [r for r in regions if r not in self._durable]
        if not missing:
            return
        self._make_room(len(missing), set(regions))
        self._durable.update(missing)
        self._slots.add(missing)

    def _make_room(self, needed: int, keep: set[int]) -> None:
        deadline = self._clock() + ROOM_TIMEOUT_SECONDS
        while len(self._durable) + needed > self.capacity:
            now = self._clock()
            excess = len(self._durable) + needed - self.capacity
            idle = sorted(
                (r for r in self._durable if r not in keep and self._retirable(r, now, self.guard_seconds)),
                key=lambda r: self._touched.get(r, _NEVER),
            )
            if idle:
                self._retire(idle[:excess])
                continue
            if now > deadline:
                raise TrackerError(
                    f"activity log {self.path}: all {self.capacity} regions stayed busy for "
                    f"{ROOM_TIMEOUT_SECONDS:.0f} s; is Kafka reachable? raise the capacity (al-extents)"
                )
            self._changed.wait(min(self.guard_seconds, 0.1) or 0.01)

    def _retirable(self, region: int, now: float, idle_for: float) -> bool:
        return region not in self._pending and now - self._touched.get(region, _NEVER)[0] >= idle_for

    def _retire(self, regions: list[int]) -> int:
        """Run the hook (image and dirty bitmap durable) without the lock, so writes to other
        regions go on; then drop the regions nobody touched since the hook started."""
        started = self._touches
        self._changed.release()
        try:
            self.durable_hook()
        finally:
            self._changed.acquire()
        leaving = [r for r in regions if r not in self._pending and self._touched.get(r, _NEVER)[1] <= started]
        if not leaving:
            return 0
        self._durable.difference_update(BitMap(leaving))
        for region in leaving:
            self._touched.pop(region, None)
        self._slots.remove(leaving)
        return len(leaving)
