"""A tracker's durable state per volume: the lock, the epoch, and a hint of the last seq.

The epoch is bumped and made durable on every start, so a restarted tracker never speaks with an
earlier tracker's epoch. The seq hint is only a lower bound; the truth is the tail of the writes
partition (see `seq_tail`).
"""

from __future__ import annotations

import os
from pathlib import Path

from tidemark.core.durable import read_or, write_durably
from tidemark.core.image_io import FileLockedError, lock

from .exceptions import TrackerError


class TrackerLockedError(TrackerError):
    """Another tracker already runs for this volume."""


class TrackerState:
    def __init__(self, folder: Path, volume: str) -> None:
        self.folder = folder
        self.volume = volume
        folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None

    def lock(self) -> None:
        fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            lock(fd, self.folder / "lock")
        except FileLockedError:
            os.close(fd)
            raise TrackerLockedError(
                f"volume {self.volume}: another tracker holds {self.folder / 'lock'}; "
                "stop it first (one tracker per volume)"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def next_epoch(self) -> int:
        epoch = int(read_or(self.folder / "epoch", b"0")) + 1
        write_durably(self.folder / "epoch", str(epoch).encode())
        return epoch

    @property
    def seq_hint(self) -> int:
        return int(read_or(self.folder / "seq", b"-1"))

    def save_seq_hint(self, seq: int) -> None:
        write_durably(self.folder / "seq", str(seq).encode())
