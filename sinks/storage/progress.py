"""Durable progress of one mirror: what it applied, which recovery points it holds, where to resume.

Stored as JSON, replaced atomically (write a temporary file, fsync, rename, fsync the folder), so a
crash leaves either the old or the new record, never a torn one. This file, not the consumer
group's committed offset, decides where an applier resumes: a revert moves it backwards.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tidemark.core.durable import write_durably

from ..exceptions import MirrorStateError
from .private import PRIVATE_FILE

REPLICATING = "REPLICATING"
PAUSED = "PAUSED"
ERROR = "ERROR"
RESYNC_NEEDED = "RESYNC_NEEDED"
FAILED_OVER = "FAILED_OVER"


@dataclass
class PointRecord:
    """A recovery point this mirror holds (it applied the change set that completed it)."""

    rp_id: int
    changeset_id: int
    seq_last: int
    next_offset: int  # Kafka offset right after the ChangeSetSealed that completed the point
    sealed_at: int  # milliseconds since the Unix epoch
    generation: int = 0  # the primary generation of that change set


@dataclass
class Progress:
    volume: str
    site: str
    mirror_path: str
    volume_size: int
    block_size: int
    partition: int | None = None
    changeset_id: int = 0  # last applied change set; 0 = none
    seq_last: int | None = None
    sealed_at: int | None = None
    next_offset: int | None = None  # Kafka offset right after the last applied seal
    rp_id: int | None = None  # last complete recovery point: the undo base
    points: list[PointRecord] = field(default_factory=list)
    state: str = REPLICATING
    message: str | None = None
    resynced_below: int | None = None
    """ResyncRequests below this offset of `partition` were repaired by `tidemark resync`"""
    reverting_to: int | None = None  # a revert that started and has not finished
    drop_undo_from: int | None = None  # a finished revert's undo cleanup, still to do
    failover_rp: int | None = None  # set while promoted: the point the mirror was failed over at
    failover_at: int | None = None  # milliseconds since the Unix epoch
    generation: int = 0
    """the newest primary generation at this mirror's place in the stream: that of the last change
    set it applied (a revert goes back to its point's), or the one its last failover, failback or
    rejoin set. The applier refuses a change set of an older generation (stream_applier.py)."""

    def point(self, rp_id: int) -> PointRecord | None:
        return next((p for p in self.points if p.rp_id == rp_id), None)

    def retained(self) -> list[int]:
        return [p.rp_id for p in self.points]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        points = [PointRecord(**p) for p in data.pop("points", [])]
        data.pop("resync_needed", None)  # files before RESYNC_NEEDED became the only record of a gap
        return cls(points=points, **data)


def load(path: Path) -> Progress | None:
    if not path.exists():
        return None
    try:
        return Progress.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise MirrorStateError(f"mirror progress {path} is unreadable ({exc}); restore it from a backup") from exc


def save(path: Path, progress: Progress) -> None:
    """Atomically replace the progress file; durable when this returns."""
    write_durably(path, json.dumps(progress.to_json(), indent=1, sort_keys=True).encode())
    os.chmod(path, PRIVATE_FILE)
