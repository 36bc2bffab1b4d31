"""The unshipped window and the pull-ahead decision (DRBD's on-congestion pull-ahead), without I/O.

A tracker is in one of two modes:
- SYNC: every write becomes events, queued for the shipper. Admitted while the link is up and
  the unshipped bytes (queued or in flight to Kafka) stay within `bound_bytes`.
- AHEAD: writes are only marked in the dirty bitmap (no events, no memory per write). Entered
  when a write would pass the bound or the link is lost. The shipper drains the dirty bitmap
  from the image while the link is up and the unshipped bytes are below `resume_bytes`; once the
  bitmap is empty it switches back to SYNC.

Markers (FLUSH, requested points) taken while AHEAD are parked, in the order they were taken,
and released at the switch back to SYNC: after the drain, so a marker's place in the partition
follows every block dirty when it was taken. Markers are never dropped.

The RPO at risk is what a loss of this host would lose: the unshipped bytes plus the dirty
blocks, and the age of the oldest of them. A stalled link is something else: events handed to
Kafka and no confirmation for too long (`stalled_for`). Writes waiting in the tracker's own queue
(or librdkafka's) behind confirmations that keep coming do not count there, so a backlog (a
client outrunning a slow link, within the bound) is not mistaken for a lost link.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

M = TypeVar("M")


class Mode(StrEnum):
    SYNC = "sync"
    AHEAD = "ahead"


@dataclass(frozen=True)
class AtRisk:
    """What is not on Kafka yet: event bytes unshipped, dirty blocks' bytes, age of the oldest."""

    unshipped_bytes: int
    dirty_bytes: int
    oldest_age: float

    @property
    def bytes(self) -> int:
        return self.unshipped_bytes + self.dirty_bytes


class ShipWindow(Generic[M]):
    """Thread-safe; `M` is the tracker's marker type (parked as given)."""

    def __init__(
        self, bound_bytes: int, resume_bytes: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bound_bytes = bound_bytes
        self.resume_bytes = bound_bytes // 2 if resume_bytes is None else resume_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self.mode = Mode.AHEAD
        self.connected = False
        self.unshipped_bytes = 0
        self._open: dict[int, float] = {}  # ticket -> when it was taken, in ticket order
        self._sent: dict[int, float] = {}  # open ticket -> when its first event went to Kafka, in that order
        self._settled_at = clock()  # when `shipped` last ran
        self._tickets = 0
        self._dirty_since: float | None = None
        self._parked: list[tuple[int, M]] = []

    def admit(self, nbytes: int, on_ahead: Callable[[], None]) -> int | None:
        """A write of `nbytes`: a ticket if it becomes events (SYNC); else `on_ahead` marks it in
        the dirty bitmap, under this lock, and None is returned. A write larger than the whole
        bound is admitted when nothing is unshipped."""
        with self._lock:
            ticket = self._admit_one(nbytes)
            if ticket is None:
                on_ahead()
            return ticket

    def admit_all(self, sizes: list[int], on_ahead: Callable[[list[int]], None]) -> list[int | None]:
        """`admit` of a run of writes of `sizes` bytes, in order, under one hold of the lock: a
        ticket or None for each. `on_ahead` gets the indexes of the writes not admitted (to mark
        them dirty, under this lock) once, when there are any."""
        tickets: list[int | None] = []
        ahead: list[int] = []
        with self._lock:
            for index, nbytes in enumerate(sizes):
                ticket = self._admit_one(nbytes)
                if ticket is None:
                    ahead.append(index)
                tickets.append(ticket)
            if ahead:
                on_ahead(ahead)
        return tickets

    def _admit_one(self, nbytes: int) -> int | None:
        """Lock held: a ticket for a write of `nbytes` while SYNC and it fits; else the window goes
        AHEAD (its dirty clock started) and None."""
        unshipped = self.unshipped_bytes
        if self.mode is Mode.SYNC and self.connected and (unshipped + nbytes <= self.bound_bytes or unshipped == 0):
            return self._take(nbytes)
        self.mode = Mode.AHEAD
        if self._dirty_since is None:
            self._dirty_since = self._clock()
        return None

    def track(self, nbytes: int) -> int:
        """Bytes produced outside `admit` (a drained extent, sent at once): a ticket, whatever the mode."""
        with self._lock:
            ticket = self._take(nbytes)
            self._sent[ticket] = self._open[ticket]
            return ticket

    def sending(self, ticket: int) -> None:
        """The first event of an admitted write is being handed to Kafka now (the ship thread,
        in ticket order)."""
        with self._lock:
            if ticket in self._open:
                self._sent.setdefault(ticket, self._clock())

    def ticket(self) -> int:
        """A place in the order for a marker (no bytes)."""
        with self._lock:
            self._tickets += 1
            return self._tickets

    def shipped(self, nbytes: int, closed: Iterable[int]) -> None:
        """`nbytes` were confirmed or went to the dirty bitmap; the `closed` tickets have no more."""
        with self._lock:
            self.unshipped_bytes -= nbytes
            self._settled_at = self._clock()
            for ticket in closed:
                self._open.pop(ticket, None)
                self._sent.pop(ticket, None)

    def link_lost(self) -> bool:
        """The link failed: AHEAD until it is back and drained. True if it was up."""
        with self._lock:
            was = self.connected
            self.connected = False
            self.mode = Mode.AHEAD
            if self._dirty_since is None:
                self._dirty_since = self._clock()
            return was

    def link_up(self) -> None:
        with self._lock:
            self.connected = True

    def may_drain(self) -> bool:
        """Read the next dirty run from the image now?"""
        with self._lock:
            return self.connected and self.mode is Mode.AHEAD and self.unshipped_bytes < self.resume_bytes

    def park(self, ticket: int, marker: M) -> None:
        """Hold a marker until the switch back to SYNC (kept in ticket order)."""
        with self._lock:
            bisect.insort(self._parked, (ticket, marker), key=lambda item: item[0])

    def parked(self) -> int:
        with self._lock:
            return len(self._parked)

    def resume(self, dirty_empty: Callable[[], bool]) -> list[M] | None:
        """Switch to SYNC if connected, AHEAD, drained and below `resume_bytes`: the parked markers
        to publish now, in order (before any later write). None when it stays as it is.

        `dirty_empty` is asked under the window's lock, the lock `admit`'s `on_ahead` runs under,
        so no write can be marked dirty between the check and the switch."""
        with self._lock:
            ready = self.connected and self.mode is Mode.AHEAD and dirty_empty()
            if not ready or self.unshipped_bytes > self.resume_bytes:
                return None
            self.mode = Mode.SYNC
            self._dirty_since = None
            released = [marker for _ticket, marker in self._parked]
            self._parked.clear()
            return released

    def at_risk(self, dirty_bytes: int) -> AtRisk:
        with self._lock:
            now = self._clock()
            oldest = [next(iter(self._open.values()))] if self._open else []
            if dirty_bytes and self._dirty_since is not None:
                oldest.append(self._dirty_since)
            age = now - min(oldest) if oldest else 0.0
            return AtRisk(self.unshipped_bytes, dirty_bytes, max(0.0, age))

    def stalled_for(self) -> float:
        """Seconds events have been with Kafka without any being settled: since the oldest open
        ticket's first event was sent, or since the last settlement if that came later (0 when
        nothing was sent). What the stall watch times; tickets still queued are not counted."""
        with self._lock:
            if not self._sent:
                return 0.0
            return self._clock() - max(next(iter(self._sent.values())), self._settled_at)

    def _take(self, nbytes: int) -> int:
        self._tickets += 1
        self.unshipped_bytes += nbytes
        self._open[self._tickets] = self._clock()
        return self._tickets
