"""The NBD export of a restore (blocking; served through `tidemark.core.nbd.export.ThreadedExport`).

Reads of relocated blocks come from the destination, of the others from the point. Writes, zeroes
and trims go to the destination and relocate the blocks they touch. A block covered only in part
(NBD requests need not be block-aligned) gets the point's content first, under the destination's
lock, so the bytes the client did not write are the point's. Once the relocation is complete,
every request goes to the destination alone, and `finish` waits for the reads still at the point,
so the point (its pin, its view of the mirror) can be let go.
"""

from __future__ import annotations

import threading
from typing import Protocol

from .activity import ClientActivity
from .destination import Destination
from .plan import Span, partial_blocks, spans


class PointReader(Protocol):
    """The recovery point (a `LivePointView`): any byte range, thread-safe."""

    def read(self, offset: int, length: int) -> bytes: ...


class RestoreExport:
    read_only = False

    def __init__(self, name: str, point: PointReader, destination: Destination, activity: ClientActivity) -> None:
        self.name = name
        self.size = destination.size
        self.block_size = destination.block_size
        self.complete = False  # set by `finish` once every block is relocated
        self._point = point
        self._destination = destination
        self._activity = activity
        self._point_readers = 0  # reads in progress that read from the point
        self._point_idle = threading.Condition(destination.lock)

    def read(self, offset: int, length: int) -> bytes:
        with self._activity.request():
            image = self._destination.image
            bs = self.block_size
            first, last = offset // bs, (offset + length - 1) // bs
            with self._point_idle:
                if self.complete:
                    found: list[Span] = [(first, last - first + 1, True)]
                else:
                    found = spans(self._destination.relocated, first, last)
                uses_point = not all(relocated for _, _, relocated in found)
                self._point_readers += uses_point
            try:
                parts = []
                for start, count, relocated in found:
                    source = image.pread if relocated else self._point.read
                    parts.append(source(start * bs, count * bs))
            finally:
                if uses_point:
                    with self._point_idle:
                        self._point_readers -= 1
                        self._point_idle.notify_all()
            data = b"".join(parts)
            skip = offset - first * bs
            return data[skip : skip + length]

    def finish(self) -> None:
        """Every block is relocated: serve the destination alone; returns once no read uses the point."""
        with self._point_idle:
            self.complete = True
            self._point_idle.wait_for(lambda: self._point_readers == 0)

    def write(self, offset: int, data: bytes) -> None:
        with self._activity.request(), self._destination.lock:
            self._prepare(offset, len(data))
            self._destination.image.pwrite(offset, data)

    def zero(self, offset: int, length: int, may_punch: bool = True) -> None:
        with self._activity.request(), self._destination.lock:
            self._prepare(offset, length)
            self._destination.image.zero(offset, length)

    def trim(self, offset: int, length: int) -> None:
        self.zero(offset, length)

    def flush(self) -> None:
        with self._activity.request():
            self._destination.sync()

    def close(self) -> None:
        """The restore session syncs and closes the destination."""

    def _prepare(self, offset: int, length: int) -> None:
        """Under the destination's lock: the point's content into the partly covered blocks not
        relocated yet, then every block of the range relocated and written by the client."""
        destination = self._destination
        bs = self.block_size
        if not self.complete:
            for block in partial_blocks(offset, length, bs):
                if block not in destination.relocated:
                    destination.image.pwrite(block * bs, self._point.read(block * bs, bs))
        first, end = offset // bs, (offset + length - 1) // bs + 1
        destination.relocated.add_range(first, end)
        destination.written.add_range(first, end)
