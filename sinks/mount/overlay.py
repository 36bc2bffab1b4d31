"""A copy-on-write overlay: the blocks written to a writable mount, kept apart from the mirror.

`<path>` is a sparse file the size of the volume holding the written blocks at their own offsets,
`<path>.bitmap` the set of blocks it holds, `<path>.json` which volume and point it belongs to
(so an overlay is never laid over another point). Written blocks become durable at `save`
(NBD FLUSH): the file is fsynced before the bitmap that points into it is replaced.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from pyroaring import BitMap

from ..exceptions import OverlayError
from ..storage.block_bitmap import load_bitmap, save_bitmap
from ..storage.mirror_file import MirrorFile


@dataclass(frozen=True)
class OverlayOwner:
    volume: str
    rp_id: int
    size: int
    block_size: int


class Overlay:
    def __init__(self, path: Path, owner: OverlayOwner) -> None:
        self.path = Path(path)
        self.block_size = owner.block_size
        self._bitmap_path = self.path.with_name(self.path.name + ".bitmap")
        _claim(self.path.with_name(self.path.name + ".json"), owner)
        self.blocks = load_bitmap(self._bitmap_path)
        self._file = MirrorFile(self.path, owner.size, create=True)
        self._lock = threading.Lock()
        self._closed = False

    def holds_any(self, first: int, last: int) -> bool:
        return self.blocks.intersection_cardinality(BitMap(range(first, last + 1))) > 0

    def read_block(self, block: int) -> bytes:
        return self._file.pread(block * self.block_size, self.block_size)

    def write_blocks(self, first: int, data: bytes) -> None:
        """Whole blocks from block `first`; visible to reads once this returns."""
        self._file.pwrite(first * self.block_size, data)
        count = len(data) // self.block_size
        with self._lock:
            self.blocks.update(range(first, first + count))

    def save(self) -> None:
        self._file.fsync()
        with self._lock:
            snapshot = BitMap(self.blocks)
        save_bitmap(self._bitmap_path, snapshot)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.save()
            self._file.close()


def _claim(meta: Path, owner: OverlayOwner) -> None:
    if not meta.exists():
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(asdict(owner), indent=1))
        return
    try:
        found = OverlayOwner(**json.loads(meta.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise OverlayError(f"overlay description {meta} is unreadable ({exc}); use another --overlay") from exc
    if found != owner:
        raise OverlayError(
            f"overlay {meta.with_suffix('')} belongs to volume {found.volume!r} recovery point "
            f"{found.rp_id}, not volume {owner.volume!r} recovery point {owner.rp_id}; "
            "use another --overlay, or remove the overlay files to start over"
        )
