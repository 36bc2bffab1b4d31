"""One partition's processor state: RocksDB (rocksdict) locally, a compacted changelog as the truth.

Every change is applied to RocksDB at once and kept in a record cache for the changelog (Kafka
Streams' record cache): the last value per key since the last `take_pending`, so the changelog
traffic of a transaction follows the keys it changed, not the events. The runner produces the
cache inside the same Kafka transaction as the outputs and the consumed offsets. The key layout
is in state_keys.py. RocksDB is only a working copy: on every assignment it is wiped and rebuilt
from the changelog (read committed), so a crash can never leave local state ahead of or behind
what Kafka committed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from rocksdict import Options, Rdict

MEMTABLE_BYTES = 4 << 20
"""RocksDB's in-memory write buffer per partition (its default is 64 MiB). The store takes 16 bytes
per sealed block until the point is cut, and RocksDB keeps deleted entries in the memtable until
it is flushed: with the default, a long seed could hold up to 64 MiB per partition in memory
before the first flush (16 GiB at 4 KiB blocks writes 64 MiB of pairs)."""
MEMTABLES = 2
"""Write buffers per partition: one filling while the other is flushed."""


class PartitionStore(MutableMapping[bytes, bytes]):
    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_write_buffer_size(MEMTABLE_BYTES)
        options.set_max_write_buffer_number(MEMTABLES)
        self.folder = folder
        self._db = Rdict(str(folder), options)
        self.pending: dict[bytes, bytes | None] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value: bytes | None = self._db.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        value = self._db.get(key)
        return default if value is None else value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._db[key] = value
        self.pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._db[key]
        self.pending[key] = None

    def __iter__(self) -> Iterator[bytes]:
        yield from self._db.keys()

    def __len__(self) -> int:
        return sum(1 for _ in self._db.keys())  # noqa: SIM118 - Rdict iterates items

    def restore(self, key: bytes, value: bytes | None) -> None:
        """Apply a changelog record without queueing it again."""
        if value is None:
            self._db.delete(key)
        else:
            self._db[key] = value

    def take_pending(self) -> list[tuple[bytes, bytes | None]]:
        """The last value (None: deleted) of every key changed since the last call."""
        pending, self.pending = self.pending, {}
        return list(pending.items())

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self.folder, ignore_errors=True)
