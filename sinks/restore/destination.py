"""The destination image of a restore and the blocks of it that hold their final content.

A block is *relocated* once the destination holds its final content: the point's (copied) or a
client's (written through the restore). The copier never writes a relocated block, so a client's
write is never copied over. `relocated` and `written` (the client's blocks) live in memory and
are saved by `sync`, which keeps this invariant on disk:

    every block in the saved relocated bitmap holds its final content durably in the image.

`sync` takes a snapshot of the bitmaps, fsyncs the image (every write done before the snapshot
is then durable), and only then replaces the bitmap files. After a crash the image may hold
newer data than the bitmap says (unflushed client writes, copies not yet synced): those blocks
are stale and get the point's content again (`plan.pending_blocks`), as a disk loses writes
that were never flushed.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pyroaring import BitMap

from tidemark.core.image_io import file_data_ranges

from ..storage.block_bitmap import load_bitmap, save_bitmap
from ..storage.mirror_file import MirrorFile
from .plan import ranges_to_blocks, spans
from .record import relocated_path, written_path


class Destination:
    """Thread-safe; `lock` orders every change of the image with the change of `relocated`."""

    def __init__(self, path: Path, size: int, block_size: int) -> None:
        self.path = path
        self.block_size = block_size
        self.image = MirrorFile(path, size, create=True, exclusive=True)
        self.lock = threading.Lock()
        self.relocated = load_bitmap(relocated_path(path))
        self.written = load_bitmap(written_path(path))
        self._sync_lock = threading.Lock()
        self._closed = False

    @property
    def size(self) -> int:
        return self.image.size

    def stale_blocks(self) -> BitMap:
        """Blocks holding data in the image that are not known final (see the module docstring)."""
        found = ranges_to_blocks(file_data_ranges(self.path, self.size), self.block_size, self.size)
        return found - self.relocated

    def copy_run(self, first: int, data: bytes) -> int:
        """The point's content of blocks `first`.. into every one of them not relocated yet, which
        then are; all-zero spans are punched. Returns the number of blocks written."""
        bs = self.block_size
        last = first + len(data) // bs - 1
        copied = 0
        view = memoryview(data)
        with self.lock:
            for start, count, relocated in spans(self.relocated, first, last):
                if relocated:
                    continue
                begin, end = (start - first) * bs, (start - first + count) * bs
                if data.count(0, begin, end) == end - begin:
                    self.image.zero(start * bs, end - begin)
                else:
                    self.image.pwrite(start * bs, view[begin:end])
                self.relocated.add_range(start, start + count)
                copied += count
        return copied

    def sync(self) -> None:
        """Make every write done so far durable, then the bitmaps that name them (in that order)."""
        with self._sync_lock:
            with self.lock:
                relocated, written = BitMap(self.relocated), BitMap(self.written)
            self.image.fsync()
            save_bitmap(written_path(self.path), written)
            save_bitmap(relocated_path(self.path), relocated)

    def close(self) -> None:
        """Syncs, then closes; idempotent."""
        if not self._closed:
            self._closed = True
            self.sync()
            self.image.close()
