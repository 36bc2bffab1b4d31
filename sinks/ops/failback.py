"""`tidemark failback`: resynchronise the old primary from the promoted mirror, then swap roles.

Only candidate blocks are compared (per-block xxh3 of both sides) and only differing ones are
copied: the blocks the failover reverted (changed on the old primary after the failover point),
the blocks written on the promoted side (recorded by `tidemark mount`), and the blocks of change
sets the old primary emitted after the failover point (`primary_changed`, read from Kafka by the
caller). `full` compares every block instead, for writes that reached neither (the promoted mirror
written outside `tidemark mount`, or the old primary written with its tracker stopped).

Afterwards the old primary is fsynced and byte-identical to the mirror on every candidate block,
the mirror is no longer promoted, its recovery points and undo data (no longer valid: the
promoted side was written without undo) are dropped, and the applier resumes at `resume` (the
end of the change-set stream as the caller found it), so change sets the old primary emitted
before the failback are not applied on top of the resynchronised mirror.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xxhash
from pyroaring import BitMap

from ..exceptions import FailbackError
from ..layout import MirrorLayout, exclusive, no_readers
from ..mirror import Mirror
from ..storage.block_bitmap import load_bitmap
from ..storage.mirror_file import MirrorFile
from ..storage.progress import PAUSED


@dataclass(frozen=True)
class StreamPosition:
    """Where the applier resumes: right after the last sealed change set of the volume."""

    partition: int
    next_offset: int
    changeset_id: int
    seq_last: int | None
    sealed_at: int | None


@dataclass(frozen=True)
class FailbackReport:
    volume: str
    failover_rp: int
    candidates: int  # blocks compared
    copied: int  # blocks that differed and were copied to the old primary
    block_size: int
    full: bool

    @property
    def bytes_copied(self) -> int:
        return self.copied * self.block_size


def failback(
    state_dir: Path,
    site: str,
    volume: str,
    mirror_path: Path,
    primary: Path,
    *,
    primary_changed: BitMap | None = None,
    resume: StreamPosition | None = None,
    full: bool = False,
    on_block: Callable[[int, int], None] | None = None,
) -> FailbackReport:
    layout = MirrorLayout.of(state_dir, site, volume)
    purpose = "fail back"
    with exclusive(layout, purpose), no_readers(layout, purpose):
        with Mirror.open_existing(layout, mirror_path) as mirror:
            state = mirror.progress
            if state.failover_rp is None:
                raise FailbackError(
                    f"the mirror of volume {volume!r} at site {site!r} was not failed over; "
                    "there is nothing to fail back"
                )
            bs, size = state.block_size, state.volume_size
            if full:
                candidates = BitMap(range(size // bs))
            else:
                candidates = load_bitmap(layout.failover_reverted) | load_bitmap(layout.promoted_writes)
                candidates |= primary_changed or BitMap()
            copied = _resync(mirror.image, primary, size, bs, candidates, on_block)
            report = FailbackReport(volume, state.failover_rp, len(candidates), copied, bs, full)
            _swap_roles(mirror, layout, resume)
            return report


def _resync(
    mirror: MirrorFile,
    primary_path: Path,
    size: int,
    bs: int,
    candidates: BitMap,
    on_block: Callable[[int, int], None] | None,
) -> int:
    if not primary_path.exists():
        raise FailbackError(f"old primary image {primary_path} does not exist; pass --primary IMAGE")
    actual = primary_path.stat().st_size
    if actual != size:
        raise FailbackError(
            f"old primary {primary_path} is {actual} bytes but the volume is {size} bytes; "
            "pass the image of this volume as --primary"
        )
    copied = 0
    with MirrorFile(primary_path, size, create=False) as primary:
        for done, block in enumerate(candidates, start=1):
            ours = mirror.pread(block * bs, bs)
            if xxhash.xxh3_64_digest(ours) != xxhash.xxh3_64_digest(primary.pread(block * bs, bs)):
                primary.pwrite(block * bs, ours)
                copied += 1
            if on_block is not None:
                on_block(done, len(candidates))
        primary.fsync()
    return copied


def _swap_roles(mirror: Mirror, layout: MirrorLayout, resume: StreamPosition | None) -> None:
    """The mirror follows the old primary again, from `resume` (or where it failed over)."""
    mirror.image.fsync()
    state = mirror.progress
    rp = state.failover_rp
    if resume is not None and resume.changeset_id > state.changeset_id:
        state.partition, state.next_offset = resume.partition, resume.next_offset
        state.changeset_id, state.seq_last, state.sealed_at = resume.changeset_id, resume.seq_last, resume.sealed_at
    state.points, state.rp_id = [], None
    state.failover_rp = state.failover_at = None
    state.state = PAUSED
    state.message = f"failed back (had failed over at recovery point {rp}); replication resumes from the primary"
    mirror.undo.drop_from(0)
    mirror.save()
    for path in (layout.failover_reverted, layout.promoted_writes):
        path.unlink(missing_ok=True)
    folder = os.open(layout.root, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
