"""Read a mirror as it was at a retained recovery point, from the mirror plus its undo data."""

from __future__ import annotations

from pyroaring import BitMap

from .mirror_file import MirrorFile
from .undo_store import UndoStore


class PointView:
    """The volume at recovery point `rp_id`. Building it scans only the undo keys >= rp_id.

    Memory: one roaring bitmap of saved blocks per undo base >= rp_id (bases ascending); the
    content of block b is the entry under the first base whose bitmap holds b, else the mirror's.
    """

    def __init__(self, mirror: MirrorFile, undo: UndoStore, rp_id: int, block_size: int) -> None:
        self.mirror = mirror
        self.undo = undo
        self.rp_id = rp_id
        self.block_size = block_size
        self.size = mirror.size
        self._bases = undo.blocks_by_base(rp_id)
        self.changed = BitMap()
        for _, blocks in self._bases:
            self.changed |= blocks

    def read_block(self, block: int) -> bytes:
        if block in self.changed:
            base = next(base for base, blocks in self._bases if block in blocks)
            saved = self.undo.get(base, block)
            if saved is not None:
                return saved
        return self.mirror.pread(block * self.block_size, self.block_size)

    def read(self, offset: int, length: int) -> bytes:
        """Any byte range, assembled from the blocks it touches."""
        bs = self.block_size
        first, last = offset // bs, (offset + length - 1) // bs
        if self.changed.intersection_cardinality(BitMap(range(first, last + 1))) == 0:
            return self.mirror.pread(offset, length)
        data = b"".join(self.read_block(b) for b in range(first, last + 1))
        start = offset - first * bs
        return data[start : start + length]
