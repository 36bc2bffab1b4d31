"""The shipper's queue: writes and markers in the order they were submitted.

Any thread puts, without waiting. Items are taken only by the holder of the shipper's lock
(`Shipper._lock`): the ship thread, or the NBD server's event loop in `Shipper.ship_queued`. So
whoever ships takes the oldest item, and the partition's order is the submit order whichever
thread produced an event.

`wait` parks the ship thread until an item was put with `wake` (or `wake` was called) since it
last woke. The item may have been taken meanwhile by the other thread: `take` then returns None.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class ShipQueue(Generic[T]):
    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._put = threading.Event()

    def put(self, item: T, *, wake: bool = True) -> None:
        """Queue `item` last. `wake=False`: the caller ships it itself soon (`Shipper.ship_queued`),
        so the ship thread is not woken for it (it finds it at its next round if it is still there)."""
        self._items.append(item)
        if wake and not self._put.is_set():  # set already: the ship thread has yet to clear it and look
            self._put.set()

    def wake(self) -> None:
        """Have the ship thread look at the queue now."""
        self._put.set()

    def wait(self, timeout: float) -> None:
        """Ship thread: return once woken (at once if woken since the last call), or after `timeout`."""
        self._put.wait(timeout)
        self._put.clear()

    def first(self) -> T | None:
        """The oldest item, left queued (the lock's holder only)."""
        try:
            return self._items[0]
        except IndexError:
            return None

    def take(self) -> T | None:
        """Remove and return the oldest item, None when empty (the lock's holder only)."""
        try:
            return self._items.popleft()
        except IndexError:
            return None

    def empty(self) -> bool:
        return not self._items

    def __len__(self) -> int:
        return len(self._items)
