"""Blocks whose latest content may not be on Kafka: published again from the image later.

A roaring bitmap in memory, persisted lazily: `add` and `discard` cost no I/O, `persist` writes
the whole bitmap durably (temp file, fsync, rename) when it changed since the last persist.
This is safe because of the activity log's rule (see `activity_log`): a region leaves the log
only after `persist` returned with every dirty block of that region in the file. Until then a
crash republishes the whole region from the image, which covers the dirty blocks too.

A run taken for draining (`take_run`) stays in the file, as in flight, until `settle_run` says
it was delivered and a later `persist` ran. After a crash the file may therefore list blocks that
were drained meanwhile: publishing them again is harmless (applying twice is harmless), losing
one would not be.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from pyroaring import BitMap

from tidemark.core.durable import read_or, write_durably


class DirtyBitmap:
    def __init__(self, path: Path) -> None:
        self.path = path
        raw = read_or(path, b"")
        self._blocks = BitMap.deserialize(raw) if raw else BitMap()
        self._in_flight = BitMap()
        self._changed = False
        self._lock = threading.Lock()
        self._persist_lock = threading.Lock()

    def __len__(self) -> int:
        """Blocks still to drain (not counting runs in flight)."""
        return len(self._blocks)

    @property
    def unshipped(self) -> int:
        """Blocks to drain plus blocks in flight."""
        with self._lock:
            return len(self._blocks | self._in_flight)

    def add(self, blocks: Iterable[int]) -> None:
        with self._lock:
            before = len(self._blocks)
            self._blocks.update(blocks)
            self._changed |= len(self._blocks) != before

    def add_range(self, first: int, end: int) -> None:
        """Blocks `first` .. `end - 1` (a run, added without building a Python range)."""
        with self._lock:
            before = len(self._blocks)
            self._blocks.add_range(first, end)
            self._changed |= len(self._blocks) != before

    def snapshot(self) -> BitMap:
        with self._lock:
            return BitMap(self._blocks)

    def discard(self, blocks: Iterable[int]) -> None:
        with self._lock:
            before = len(self._blocks)
            # pyroaring's difference_update takes bitmaps only (a range raises AttributeError).
            self._blocks.difference_update(BitMap(blocks))
            self._changed |= len(self._blocks) != before

    def take_run(self, max_blocks: int) -> tuple[int, int] | None:
        """Move the first run of blocks to drain (first, count), at most `max_blocks` long, in flight.

        The caller publishes it and calls `settle_run`. The file keeps listing the run until then.
        """
        with self._lock:
            if not self._blocks:
                return None
            first = self._blocks.min()
            end = first + 1
            while end - first < max_blocks and end in self._blocks:
                end += 1
            self._blocks.remove_range(first, end)
            self._in_flight.add_range(first, end)
            return first, end - first

    def settle_run(self, first: int, count: int, delivered: bool) -> None:
        """A taken run was delivered (it leaves the bitmap) or failed (it is to drain again)."""
        with self._lock:
            self._in_flight.remove_range(first, first + count)
            if delivered:
                self._changed = True
            else:
                self._blocks.add_range(first, first + count)

    def persist(self) -> None:
        """Make the current content durable (nothing to do when unchanged since the last call)."""
        with self._persist_lock:
            with self._lock:
                if not self._changed:
                    return
                raw = (self._blocks | self._in_flight).serialize()
                self._changed = False
            write_durably(self.path, raw)
