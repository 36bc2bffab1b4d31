"""Undo data of a mirror: the content blocks had at recovery points, before they were overwritten.

Key layout (16 bytes, big-endian so keys sort by recovery point, then block):

    offset 0  8 bytes  base_rp_id: the last complete recovery point when the block was first
                       overwritten after it
    offset 8  8 bytes  block index

Value: the block's content as of recovery point base_rp_id (block_size bytes), or the empty
value when that content was all zeros (a block never written, or zeroed): a mirror seeded from
empty keeps a 16-byte key per block, not a 4 KiB pre-image. `get` returns the zeros. First write
wins: an entry is never replaced, so a replay after a crash keeps the content from before the
first attempt.

The content of block b at recovery point j is `undo[(k, b)]` for the smallest k >= j present,
else the mirror's current content. Reading or reverting to j therefore scans only the keys with
prefix k >= j: the cost follows the blocks changed since j, never the disk size. Readers go
through the keys in order and keep at most one roaring bitmap of blocks per base, never a
per-block dict.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType

from pyroaring import BitMap
from rocksdict import AccessType, Options, Rdict, RdictIter, WriteBatch, WriteOptions

from tidemark.core.blocks import runs_limited

from ..exceptions import MirrorStateError
from .private import PRIVATE_FOLDER

KEY = struct.Struct(">QQ")  # base_rp_id, block index
PREFIX = struct.Struct(">Q")  # base_rp_id alone: the seek position of a recovery point's entries
BATCH_BYTES = 16 << 20
RUN_BLOCKS = 256
"""The longest run `save_pre_images` reads at once (1 MiB of 4 KiB blocks)."""
AFTER_ALL_KEYS = b"\xff" * (KEY.size + 1)  # sorts after every 16-byte key


def undo_key(rp_id: int, block: int) -> bytes:
    return KEY.pack(rp_id, block)


class UndoStore:
    """A rocksdict store of pre-images. Writes are synced before `save_pre_images` returns.

    `follower` (a private folder) opens a RocksDB secondary instance instead: read-only, and
    `catch_up` makes it see every entry the writing process (the applier) synced so far.
    """

    def __init__(self, path: Path, block_size: int, read_only: bool = False, follower: Path | None = None) -> None:
        self.path = Path(path)
        self.block_size = block_size
        options = Options(raw_mode=True)
        options.create_if_missing(not read_only and follower is None)
        if follower is not None:
            access = AccessType.secondary(str(follower))
        else:
            access = AccessType.read_only() if read_only else AccessType.read_write()
        try:
            self._db = Rdict(str(self.path), options, access_type=access)
        except Exception as exc:  # rocksdict raises plain Exception for RocksDB status errors
            raise MirrorStateError(
                f"cannot open undo store {self.path}: {exc}; is another process using this mirror?"
            ) from exc
        if not read_only and follower is None:
            os.chmod(self.path, PRIVATE_FOLDER)
        self._sync = WriteOptions()
        self._sync.sync = True

    def save_pre_images(self, base_rp: int, blocks: Iterable[int], read_run: Callable[[int, int], bytes]) -> int:
        """Save the current content of every block not yet saved under base_rp; durable on return.

        `blocks` ascend. `read_run(first, count)` returns the current content of `count` blocks
        from `first` (count * block_size bytes). The work goes per run of adjacent blocks, at most
        RUN_BLOCKS long: one iterator seek finds the run's blocks already saved, one read fetches
        the rest, so a change set of long extents costs a few calls per extent, not per block.
        Returns the number of entries written.
        """
        batch = WriteBatch(raw_mode=True)
        pending = saved = 0
        zeros = bytes(self.block_size)
        bs = self.block_size
        it = self._db.iter()
        for first, count in runs_limited(blocks, RUN_BLOCKS):
            present = self._saved_in_run(it, base_rp, first, count)
            if len(present) == count:
                continue
            content = read_run(first, count)
            for index in range(count):
                block = first + index
                if block in present:
                    continue
                pre_image = content[index * bs : (index + 1) * bs]
                stored = b"" if pre_image == zeros else pre_image
                batch.put(undo_key(base_rp, block), stored)
                pending += len(stored) + KEY.size
                saved += 1
            if pending >= BATCH_BYTES:
                self._db.write(batch, self._sync)
                batch = WriteBatch(raw_mode=True)
                pending = 0
        del it
        if pending:
            self._db.write(batch, self._sync)
        return saved

    @staticmethod
    def _saved_in_run(it: RdictIter, base_rp: int, first: int, count: int) -> set[int]:
        """The blocks of `[first, first + count)` that have an entry under base_rp (one seek)."""
        present: set[int] = set()
        it.seek(undo_key(base_rp, first))
        end = undo_key(base_rp, first + count)
        while it.valid():
            key = it.key()
            if key >= end:
                break
            present.add(KEY.unpack(key)[1])
            it.next()
        return present

    def get(self, rp_id: int, block: int) -> bytes | None:
        value = self._db.get(undo_key(rp_id, block))
        return None if value is None else self._content(value)

    def _content(self, value: bytes) -> bytes:
        return bytes(value) if value else bytes(self.block_size)

    def entries_from(self, rp_id: int) -> Iterator[tuple[int, int]]:
        """`(base_rp, block)` of every entry with base_rp >= rp_id, in key order."""
        it = self._db.iter()
        it.seek(PREFIX.pack(rp_id))
        while it.valid():
            yield KEY.unpack(it.key())
            it.next()

    def contents_at(self, rp_id: int) -> Iterator[tuple[int, bytes]]:
        """`(block, content at rp_id)` of every block changed since rp_id, each once.

        Walks the entries in key order (bases ascending): the first entry met for a block is the
        one with the smallest base >= rp_id. Memory: one roaring bitmap of the blocks met.
        """
        met = BitMap()
        it = self._db.iter()
        it.seek(PREFIX.pack(rp_id))
        while it.valid():
            _, block = KEY.unpack(it.key())
            if block not in met:
                met.add(block)
                yield block, self._content(it.value())
            it.next()

    def blocks_by_base(self, rp_id: int) -> list[tuple[int, BitMap]]:
        """`(base, blocks saved under it)` for every base >= rp_id, bases ascending (keys only)."""
        found: list[tuple[int, BitMap]] = []
        for base, block in self.entries_from(rp_id):
            if not found or found[-1][0] != base:
                found.append((base, BitMap()))
            found[-1][1].add(block)
        return found

    def changed_since(self, rp_id: int) -> BitMap:
        """The blocks changed since rp_id (those with an entry under any base >= rp_id)."""
        changed = BitMap()
        for _, blocks in self.blocks_by_base(rp_id):
            changed |= blocks
        return changed

    def catch_up(self) -> None:
        """A follower: see everything the writer synced until now."""
        self._db.try_catch_up_with_primary()

    def bases_from(self, rp_id: int) -> list[int]:
        """The distinct bases >= rp_id that have entries: one seek per base, not per entry."""
        bases: list[int] = []
        it = self._db.iter()
        it.seek(PREFIX.pack(rp_id))
        while it.valid():
            base, _ = KEY.unpack(it.key())
            bases.append(base)
            it.seek(PREFIX.pack(base + 1))
        return bases

    def drop_from(self, rp_id: int) -> None:
        """Forget every entry with base >= rp_id (after a revert to rp_id)."""
        self._db.delete_range(PREFIX.pack(rp_id), AFTER_ALL_KEYS, self._sync)

    def drop_before(self, rp_id: int) -> None:
        """Forget every entry with base < rp_id (points older than rp_id expired)."""
        self._db.delete_range(PREFIX.pack(0), PREFIX.pack(rp_id), self._sync)

    def count(self) -> int:
        return sum(1 for _ in self.entries_from(0))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> UndoStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
