"""Where one site's mirror of a volume keeps its state, and the lock that keeps writers apart."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tidemark.core.names import validate_name

from .exceptions import MirrorLockedError

DEFAULT_SITE = "default"


@dataclass(frozen=True)
class MirrorLayout:
    """`<state_dir>/mirrors/<site>/<volume>/{progress.json, undo/, lock, spool/}`."""

    root: Path
    site: str
    volume: str

    @classmethod
    def of(cls, state_dir: Path, site: str, volume: str) -> MirrorLayout:
        validate_name(site, "site")
        validate_name(volume, "volume")
        return cls(Path(state_dir) / "mirrors" / site / volume, site, volume)

    @property
    def progress(self) -> Path:
        return self.root / "progress.json"

    @property
    def undo(self) -> Path:
        return self.root / "undo"

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(exist_ok=True)


@contextmanager
def exclusive(layout: MirrorLayout, purpose: str) -> Iterator[None]:
    """Hold the mirror's lock: one applier, revert or verify at a time; fails fast if taken."""
    layout.ensure()
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise MirrorLockedError(
                f"cannot {purpose}: the mirror of volume {layout.volume!r} at site {layout.site!r} "
                f"is in use by {holder}; stop `tidemark mirror --volume {layout.volume} "
                f"--site {layout.site}` first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({purpose})\n".encode(), 0)
        yield
    finally:
        os.close(fd)
