"""Two primitives that keep pipelined requests safe: an asyncio range lock and a byte budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tidemark.core.blocks import Extent


class RangeLock:
    """Mutual exclusion between overlapping extents; disjoint extents proceed in parallel.

    The write path holds the aligned extent from `intent` through the image write to the
    tracker submit, so two overlapping writes reach the image and the event stream in the same
    order. Without it the image could end with one write and the mirror with the other.
    """

    def __init__(self) -> None:
        self._held: list[Extent] = []
        self._changed = asyncio.Condition()

    @property
    def idle(self) -> bool:
        """No extent is held."""
        return not self._held

    def is_free(self, extent: Extent) -> bool:
        """No held extent overlaps `extent` (a synchronous caller on the loop may then act at once)."""
        return all(extent.end <= held.offset or held.end <= extent.offset for held in self._held)

    @asynccontextmanager
    async def hold(self, extent: Extent) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self.is_free(extent))
            self._held.append(extent)
        try:
            yield
        finally:
            async with self._changed:
                self._held.remove(extent)
                self._changed.notify_all()


class ByteBudget:
    """Caps the bytes held by in-flight requests (payloads and read buffers); event-loop thread only.

    A request larger than the whole budget is still admitted when nothing else is in flight, so
    no valid request waits forever. While the budget is spent the connection stops reading, and
    TCP pushes back on the client; `release` says when to read again.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.used = 0

    def try_acquire(self, amount: int) -> bool:
        """Take `amount` if it fits (or nothing is held); False leaves the budget unchanged."""
        if self.used and self.used + amount > self._limit:
            return False
        self.used += amount
        return True

    def release(self, amount: int) -> None:
        self.used -= amount
