"""Two asyncio primitives that keep pipelined requests safe: a range lock and a byte budget."""

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

    def _free(self, extent: Extent) -> bool:
        return all(extent.end <= held.offset or held.end <= extent.offset for held in self._held)

    @asynccontextmanager
    async def hold(self, extent: Extent) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._free(extent))
            self._held.append(extent)
        try:
            yield
        finally:
            async with self._changed:
                self._held.remove(extent)
                self._changed.notify_all()


class ByteBudget:
    """Caps the bytes held by one connection's in-flight requests (payloads and read buffers).

    A request larger than the whole budget is still admitted when nothing else is in flight, so
    no valid request waits forever. While the budget is spent the connection stops reading, and
    TCP pushes back on the client.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._changed = asyncio.Condition()

    async def acquire(self, amount: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._used == 0 or self._used + amount <= self._limit)
            self._used += amount

    async def release(self, amount: int) -> None:
        async with self._changed:
            self._used -= amount
            self._changed.notify_all()
