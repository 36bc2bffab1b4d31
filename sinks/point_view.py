"""Read a mirror as it was at a retained recovery point, from the mirror plus its undo data."""

from __future__ import annotations

from .mirror_file import MirrorFile
from .undo_store import UndoStore


class PointView:
    """The volume at recovery point `rp_id`. Building it scans only the undo keys >= rp_id."""

    def __init__(self, mirror: MirrorFile, undo: UndoStore, rp_id: int, block_size: int) -> None:
        self.mirror = mirror
        self.undo = undo
        self.rp_id = rp_id
        self.block_size = block_size
        self.size = mirror.size
        self.changed = undo.changed_since(rp_id)  # block -> undo base holding its content at rp_id

    def read_block(self, block: int) -> bytes:
        base = self.changed.get(block)
        if base is not None:
            saved = self.undo.get(base, block)
            if saved is not None:
                return saved
        return self.mirror.pread(block * self.block_size, self.block_size)

    def read(self, offset: int, length: int) -> bytes:
        """Any byte range, assembled from the blocks it touches."""
        bs = self.block_size
        first, last = offset // bs, (offset + length - 1) // bs
        if not any(b in self.changed for b in range(first, last + 1)):
            return self.mirror.pread(offset, length)
        data = b"".join(self.read_block(b) for b in range(first, last + 1))
        start = offset - first * bs
        return data[start : start + length]
