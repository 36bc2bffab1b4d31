"""A copy of blocks about to be overwritten, kept until the operation that overwrites them is verified.

Layout: `<name>.img`, a sparse file the size of the volume holding each saved block at its own
offset (a block never saved reads as a hole), and `<name>.bitmap`, the set of saved blocks
(pyroaring, replaced atomically). Both are private to their owner (0600). `save` never replaces a
block already saved: after a crash and a rerun, the copy still holds the content from before the
first attempt. `commit` makes the copy durable (file fsynced, then the bitmap): only then may the
blocks be overwritten. `drop` removes both files once the overwrite is verified.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from tidemark.core.image_io import open_image, pread_full, pwrite_full

from .block_bitmap import load_bitmap, save_bitmap
from .private import PRIVATE_FILE


class SavedBlocks:
    def __init__(self, folder: Path, name: str, size: int, block_size: int) -> None:
        self.image = Path(folder) / f"{name}.img"
        self.bitmap = Path(folder) / f"{name}.bitmap"
        self.block_size = block_size
        self.blocks = load_bitmap(self.bitmap)
        self._fd = open_image(self.image, writable=True, create=True, mode=PRIVATE_FILE)
        os.ftruncate(self._fd, size)

    def save(self, block: int, content: bytes) -> None:
        """Keep `content` as block `block`'s saved copy, unless a copy is already kept."""
        if block in self.blocks:
            return
        pwrite_full(self._fd, content, block * self.block_size)
        self.blocks.add(block)

    def commit(self) -> None:
        """Durable on return: the blocks saved so far may now be overwritten."""
        os.fsync(self._fd)
        save_bitmap(self.bitmap, self.blocks)

    def read(self, block: int) -> bytes:
        return pread_full(self._fd, self.block_size, block * self.block_size, self.image)

    def drop(self) -> None:
        self.close()
        self.bitmap.unlink(missing_ok=True)
        self.image.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SavedBlocks:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
