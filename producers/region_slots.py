"""The activity log's file: a fixed array of region slots, updated in place.

Layout: `slots` consecutive little-endian signed 64-bit integers (struct `<q`), slot i at byte
offset 8 * i. A slot holds a region index (>= 0) or -1 (free). The file is created at its full
size with every slot free, durably (temp file, fsync, rename).

Entering regions writes their slots with `pwrite` and makes them durable with one `fdatasync`:
one flush per entry instead of the two (file and folder) of a replaced file. An 8-byte write at
an 8-byte aligned offset lies inside one sector, which storage writes atomically, so a crash
leaves each slot either old or new. Freeing a slot needs no flush: a slot found still in use
after a crash only makes its region republished once more.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path

from tidemark.core.durable import read_or, write_durably
from tidemark.core.image_io import pwrite_full

SLOT = struct.Struct("<q")  # a region index, or FREE
FREE = -1
MAX_REGIONS = 1 << 32


class RegionSlots:
    """Not thread-safe: the activity log calls it under its lock."""

    def __init__(self, path: Path, slots: int) -> None:
        raw = read_or(path, b"")
        whole = len(raw) - len(raw) % SLOT.size
        # A value outside 0 .. 2**32 - 1 (a roaring bitmap's range) reads as free: a file of another
        # format then yields at most some extra regions to republish, never an error.
        self.recovered = sorted({v for (v,) in SLOT.iter_unpack(raw[:whole]) if 0 <= v < MAX_REGIONS})
        self.path = path
        self.slots = max(slots, len(self.recovered))
        image = bytearray(SLOT.pack(FREE) * self.slots)
        for index, region in enumerate(self.recovered):
            SLOT.pack_into(image, index * SLOT.size, region)
        write_durably(path, bytes(image))
        self._slot_of = {region: index for index, region in enumerate(self.recovered)}
        self._free = list(range(self.slots - 1, len(self.recovered) - 1, -1))  # pop() takes the lowest
        self._fd = os.open(path, os.O_RDWR)

    def add(self, regions: Iterable[int]) -> None:
        """Write the regions into free slots and make them durable (the caller checked the room)."""
        for region in regions:
            slot = self._free.pop()
            self._slot_of[region] = slot
            pwrite_full(self._fd, SLOT.pack(region), slot * SLOT.size)
        os.fdatasync(self._fd)

    def remove(self, regions: Iterable[int]) -> None:
        """Free the regions' slots (no flush needed, see the module docstring)."""
        for region in regions:
            slot = self._slot_of.pop(region)
            pwrite_full(self._fd, SLOT.pack(FREE), slot * SLOT.size)
            self._free.append(slot)

    def clear(self) -> None:
        """Every slot free, durably (a clean stop)."""
        self.remove(list(self._slot_of))
        os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
