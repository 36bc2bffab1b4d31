"""The durable description of a restore, kept beside its destination image.

`<IMAGE>.restore.json` (0600): `{"volume", "rp_id", "site", "size", "block_size", "complete"}`.
It is written (durably) before the destination is created, so a destination without it was never
a restore of ours and is refused; a restart of the same restore finds it and resumes. `complete`
turns true only after the last copied block and the relocation bitmap are durable.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tidemark.core.durable import write_durably

from ..storage.private import PRIVATE_FILE
from .exceptions import RestoreError


@dataclass(frozen=True)
class RestoreRecord:
    volume: str
    rp_id: int
    site: str
    size: int
    block_size: int
    complete: bool = False

    def completed(self) -> RestoreRecord:
        return replace(self, complete=True)

    def same_restore(self, other: RestoreRecord) -> bool:
        """The same point of the same volume, whichever mirror site serves it."""
        return (self.volume, self.rp_id, self.size, self.block_size) == (
            other.volume, other.rp_id, other.size, other.block_size,
        )  # fmt: skip


def record_path(destination: Path) -> Path:
    return destination.with_name(destination.name + ".restore.json")


def relocated_path(destination: Path) -> Path:
    """The bitmap of blocks whose destination content is final (copied or written by a client)."""
    return destination.with_name(destination.name + ".restore.relocated")


def written_path(destination: Path) -> Path:
    """The bitmap of blocks clients wrote through the restore (what `--protect` ships first)."""
    return destination.with_name(destination.name + ".restore.written")


def load_record(destination: Path) -> RestoreRecord | None:
    path = record_path(destination)
    try:
        return RestoreRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise RestoreError(
            f"restore record {path} is unreadable ({exc}); remove it and {destination} to start the restore over"
        ) from exc


def save_record(destination: Path, record: RestoreRecord) -> None:
    path = record_path(destination)
    write_durably(path, json.dumps(asdict(record), indent=1).encode())
    os.chmod(path, PRIVATE_FILE)


def claim(destination: Path, wanted: RestoreRecord) -> RestoreRecord:
    """The record of this restore: the one found beside `destination` (a restart), or `wanted`,
    saved before the destination exists. Refuses a destination holding anything else."""
    found = load_record(destination)
    if found is None:
        if destination.exists() and destination.stat().st_size > 0:
            raise RestoreError(
                f"{destination} exists and is not a restore of volume {wanted.volume!r}: restore writes a new "
                "image; name a new file, or remove this one if it holds nothing you need"
            )
        destination.unlink(missing_ok=True)
        save_record(destination, wanted)
        return wanted
    if not found.same_restore(wanted):
        raise RestoreError(
            f"{destination} is the restore of volume {found.volume!r} recovery point {found.rp_id}, not volume "
            f"{wanted.volume!r} recovery point {wanted.rp_id}; name a new file, or remove {destination} and "
            f"{record_path(destination)} to start over"
        )
    return found
