"""Where one site's mirror of a volume keeps its state, and the lock that keeps writers apart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tidemark.core.image_io import FileLockedError, lock, write_holder
from tidemark.core.names import validate_name

from .exceptions import MirrorInUseError, MirrorLockedError
from .storage.private import PRIVATE_FILE, private_folder

DEFAULT_SITE = "default"


@dataclass(frozen=True)
class MirrorLayout:
    """`<state_dir>/mirrors/<site>/<volume>/{progress.json, undo/, lock, readers, release, spool/, ...}`."""

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

    @property
    def readers(self) -> Path:
        """Shared-locked by every mount of a recovery point; revert and failover need it free."""
        return self.root / "readers"

    @property
    def followers(self) -> Path:
        """Private folders of read-only undo store followers (one per mount process)."""
        return self.root / "followers"

    @property
    def overlays(self) -> Path:
        return self.root / "overlays"

    @property
    def failover_reverted(self) -> Path:
        """Blocks the failover reverted: changed on the old primary after the failover point."""
        return self.root / "failover-reverted.bitmap"

    @property
    def promoted_writes(self) -> Path:
        """Blocks written to the promoted mirror through `tidemark mount` (durable before the write)."""
        return self.root / "promoted-writes.bitmap"

    @property
    def release(self) -> Path:
        """Present while an operation (failover) asks the applier serving this mirror to let it go."""
        return self.root / "release"

    def ensure(self) -> None:
        """The mirror's state folder and its spool, private to their owner (storage/private.py)."""
        private_folder(self.root)
        private_folder(self.spool)


@contextmanager
def exclusive(layout: MirrorLayout, purpose: str) -> Iterator[None]:
    """Hold the mirror's lock: one applier, revert or verify at a time; fails fast if taken."""
    layout.ensure()
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        try:
            lock(fd, layout.lock, names_holder=True)
        except FileLockedError as exc:
            raise MirrorLockedError(
                f"cannot {purpose}: the mirror of volume {layout.volume!r} at site {layout.site!r} "
                f"is in use by {exc.holder or 'another process'}; stop `tidemark mirror --volume {layout.volume} "
                f"--site {layout.site}` first"
            ) from None
        write_holder(fd, purpose)
        yield
    finally:
        os.close(fd)


@contextmanager
def reading(layout: MirrorLayout) -> Iterator[None]:
    """Shared hold on the readers lock: a mount serving a recovery point."""
    with _readers_lock(layout, True, "mount"):
        yield


@contextmanager
def no_readers(layout: MirrorLayout, purpose: str) -> Iterator[None]:
    """Exclusive hold on the readers lock: nothing mounted may see the mirror change under it."""
    with _readers_lock(layout, False, purpose):
        yield


@contextmanager
def _readers_lock(layout: MirrorLayout, shared: bool, purpose: str) -> Iterator[None]:
    layout.ensure()
    fd = os.open(layout.readers, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        try:
            lock(fd, layout.readers, shared=shared)
        except FileLockedError:
            if shared:
                raise MirrorInUseError(
                    f"cannot {purpose}: the mirror of volume {layout.volume!r} at site {layout.site!r} "
                    "is being reverted, failed over or failed back; wait for it to finish"
                ) from None
            raise MirrorInUseError(
                f"cannot {purpose}: a recovery point of volume {layout.volume!r} at site "
                f"{layout.site!r} is mounted (`tidemark mount`); stop the mount first"
            ) from None
        yield
    finally:
        os.close(fd)
