"""Blocks whose latest content may not be on Kafka: published again from the image later.

Kept as a roaring bitmap in memory and written durably (temp file, fsync, rename) whenever it
grows, so a block recorded here survives a crash before the tracker acknowledges the write.
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
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._blocks)

    def add(self, blocks: Iterable[int]) -> None:
        with self._lock:
            before = len(self._blocks)
            self._blocks.update(blocks)
            if len(self._blocks) != before:
                write_durably(self.path, self._blocks.serialize())

    def snapshot(self) -> BitMap:
        with self._lock:
            return BitMap(self._blocks)

    def discard(self, blocks: Iterable[int]) -> None:
        with self._lock:
            before = len(self._blocks)
            # pyroaring's difference_update takes bitmaps only (a range raises AttributeError).
            self._blocks.difference_update(BitMap(blocks))
            if len(self._blocks) != before:
                write_durably(self.path, self._blocks.serialize())
