"""The scan tracker's persistent per-block checksum map (rocksdict).

Key: block index, 8-byte big-endian (so keys sort by block and a range is one seek). Value: the
8-byte xxh3-64 digest of the block as last *published* (confirmed by Kafka). A block without an
entry reads as zeros once the volume is seeded. `scan.json` beside the map records the geometry
the map was built for and whether the seeding pass completed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

from .exceptions import TrackerError

_KEY = 8


def block_key(block: int) -> bytes:
    return block.to_bytes(_KEY, "big")


class ChecksumMap:
    def __init__(self, folder: Path, volume: str, volume_size: int, block_size: int):
        self._volume = volume
        self._meta_path = folder / "scan.json"
        folder.mkdir(parents=True, exist_ok=True)
        self._meta = self._load_meta(folder, volume_size, block_size)
        try:
            self._db = Rdict(str(folder / "checksums"), Options(raw_mode=True))
        except Exception as exc:  # rocksdict raises plain Exception (lock held, corruption)
            raise TrackerError(
                f"cannot open the scan map of volume {volume!r} at {folder / 'checksums'}: {exc} "
                "(is another scan of this volume running?)"
            ) from exc

    @property
    def seeded(self) -> bool:
        return bool(self._meta["seeded"])

    def mark_seeded(self) -> None:
        self._meta["seeded"] = True
        self._save_meta()

    def range(self, first: int, end: int) -> dict[int, bytes]:
        """The stored digests of blocks `[first, end)`; cost follows the stored entries, not the range."""
        found: dict[int, bytes] = {}
        stop = block_key(end)
        cursor = self._db.iter()
        cursor.seek(block_key(first))
        while cursor.valid():
            key = cursor.key()
            if key >= stop:
                break
            found[int.from_bytes(key, "big")] = cursor.value()
            cursor.next()
        del cursor
        return found

    def commit(self, updates: Mapping[int, bytes | None]) -> None:
        """Apply confirmed changes in one atomic batch: a digest to store, or None to forget."""
        if not updates:
            return
        batch = WriteBatch(raw_mode=True)
        for block, digest in updates.items():
            if digest is None:
                batch.delete(block_key(block))
            else:
                batch.put(block_key(block), digest)
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()

    def _load_meta(self, folder: Path, volume_size: int, block_size: int) -> dict[str, object]:
        if not self._meta_path.exists():
            self._meta = {"volume_size": volume_size, "block_size": block_size, "seeded": False}
            self._save_meta()
            return self._meta
        meta: dict[str, object] = json.loads(self._meta_path.read_text())
        if (meta.get("volume_size"), meta.get("block_size")) != (volume_size, block_size):
            raise TrackerError(
                f"the scan map of volume {self._volume!r} in {folder} was built for "
                f"{meta.get('volume_size')} bytes in blocks of {meta.get('block_size')}, but the volume is "
                f"{volume_size} bytes in blocks of {block_size}: remove {folder} to seed again"
            )
        return meta

    def _save_meta(self) -> None:
        partial = self._meta_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(self._meta))
        os.replace(partial, self._meta_path)
