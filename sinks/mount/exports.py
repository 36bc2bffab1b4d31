"""NBD export backends of a mirror (blocking; served through `tidemark.core.nbd.export.ThreadedExport`).

`PointExport` serves a recovery point from a `LivePointView`: read-only, or with a copy-on-write
`Overlay` that takes every write (the mirror is never written). `PromotedExport` serves a
failed-over mirror read-write and records each written block durably before the write lands, so
failback knows which blocks the promoted side changed.
"""

from __future__ import annotations

import threading

from ..layout import MirrorLayout
from ..storage.block_bitmap import load_bitmap, save_bitmap
from ..storage.mirror_file import MirrorFile
from .live_view import LivePointView
from .overlay import Overlay

ZERO_STEP = 1 << 20


class PointExport:
    def __init__(self, name: str, view: LivePointView, overlay: Overlay | None) -> None:
        self.name = name
        self.size = view.volume_size
        self.block_size = view.block_size
        self.read_only = overlay is None
        self._view = view
        self._overlay = overlay
        self._write_lock = threading.Lock()  # read-modify-write of partial blocks

    def read(self, offset: int, length: int) -> bytes:
        bs = self.block_size
        first, last = offset // bs, (offset + length - 1) // bs
        if self._overlay is None or not self._overlay.holds_any(first, last):
            return self._view.read(offset, length)
        data = bytearray(self._view.read(first * bs, (last - first + 1) * bs))
        for block in range(first, last + 1):
            if block in self._overlay.blocks:
                at = (block - first) * bs
                data[at : at + bs] = self._overlay.read_block(block)
        start = offset - first * bs
        return bytes(data[start : start + length])

    def write(self, offset: int, data: bytes) -> None:
        overlay = self._writable()
        bs = self.block_size
        first, last = offset // bs, (offset + len(data) - 1) // bs
        with self._write_lock:
            if offset % bs or len(data) % bs:
                covering = bytearray(self.read(first * bs, (last - first + 1) * bs))
                start = offset - first * bs
                covering[start : start + len(data)] = data
                data = bytes(covering)
            overlay.write_blocks(first, data)

    def zero(self, offset: int, length: int, may_punch: bool = True) -> None:
        end = offset + length
        while offset < end:
            step = min(ZERO_STEP, end - offset)
            self.write(offset, bytes(step))
            offset += step

    def trim(self, offset: int, length: int) -> None:
        self.zero(offset, length)

    def flush(self) -> None:
        if self._overlay is not None:
            self._overlay.save()

    def close(self) -> None:
        try:
            if self._overlay is not None:
                self._overlay.close()
        finally:
            self._view.close()

    def _writable(self) -> Overlay:
        if self._overlay is None:
            raise PermissionError(f"export {self.name!r} is read-only")  # the server answers EPERM first
        return self._overlay


class PromotedExport:
    """The promoted mirror, read-write; written blocks are recorded before they change."""

    read_only = False

    def __init__(self, layout: MirrorLayout, image: MirrorFile, block_size: int) -> None:
        self.name = layout.volume
        self.size = image.size
        self.block_size = block_size
        self._layout = layout
        self._image = image
        self._written = load_bitmap(layout.promoted_writes)
        self._record_lock = threading.Lock()
        self._closed = False

    def read(self, offset: int, length: int) -> bytes:
        return self._image.pread(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self._record(offset, len(data))
        self._image.pwrite(offset, data)

    def zero(self, offset: int, length: int, may_punch: bool = True) -> None:
        self._record(offset, length)
        self._image.zero(offset, length)

    def trim(self, offset: int, length: int) -> None:
        self.zero(offset, length)

    def flush(self) -> None:
        self._image.fsync()

    def close(self) -> None:
        """Idempotent."""
        if not self._closed:
            self._closed = True
            self._image.fsync()
            self._image.close()

    def _record(self, offset: int, length: int) -> None:
        bs = self.block_size
        blocks = range(offset // bs, (offset + length - 1) // bs + 1)
        with self._record_lock:
            if all(block in self._written for block in blocks):
                return
            self._written.update(blocks)
            save_bitmap(self._layout.promoted_writes, self._written)
