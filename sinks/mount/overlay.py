"""A copy-on-write overlay: the blocks written to a writable mount, kept apart from the mirror.

`<path>` is a sparse file the size of the volume holding the written blocks at their own offsets,
`<path>.bitmap` the set of blocks it holds, `<path>.json` which volume and point it belongs to
(so an overlay is never laid over another point). Written blocks become durable at `save`
(NBD FLUSH): the file is fsynced before the bitmap that points into it is replaced.

The three files are private (0600). The overlay is never the mirror image it lies over, and its
file is held with an exclusive flock while open: a file another tidemark process holds (a mirror
image being applied, another mount's overlay, a tracked image) is refused.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from pyroaring import BitMap

from ..exceptions import OverlayError
from ..storage.block_bitmap import load_bitmap, save_bitmap
from ..storage.mirror_file import MirrorFile
from ..storage.private import PRIVATE_FILE


@dataclass(frozen=True)
class OverlayOwner:
    volume: str
    rp_id: int
    size: int
    block_size: int


class Overlay:
    def __init__(self, path: Path, owner: OverlayOwner, image: Path) -> None:
        """`image`: the mirror image the overlay lies over, which it must not be."""
        self.path = Path(path)
        self.block_size = owner.block_size
        if self.path.exists() and self.path.samefile(image):
            raise OverlayError(
                f"--overlay {self.path} is the mirror image of volume {owner.volume!r} itself; writes "
                "would land in the mirror. Name a new file (default: in the mirror's state folder)"
            )
        self._bitmap_path = self.path.with_name(self.path.name + ".bitmap")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = MirrorFile(self.path, owner.size, create=True, mode=PRIVATE_FILE, exclusive=True)
        try:
            _claim(self.path.with_name(self.path.name + ".json"), owner)
            self.blocks = load_bitmap(self._bitmap_path)
        except BaseException:
            self._file.close()
            raise
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
        fd = os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(asdict(owner), indent=1))
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
