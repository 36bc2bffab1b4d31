"""`tidemark failback`: resynchronise the old primary from the promoted mirror, then swap roles.

A planned failover in reverse. Only candidate blocks are compared (per-block xxh3 of both sides)
and only differing ones are copied. The candidates are the blocks changed on each side since the
common point (the failover point):
- the old primary's side: the blocks the failover reverted (changed on the old primary after the
  failover point) and the blocks of change sets the old primary emitted after the failover point
  (`primary_changed`, read from Kafka by the caller);
- the promoted mirror's side: the blocks written through `tidemark mount` (promoted-writes) and,
  after `failover --reverse`, the blocks of the change sets its tracker emitted under the
  failover's generation (`promoted_changed`, read from Kafka by the caller).
`full` compares every block instead, for writes that reached neither (the promoted mirror written
outside `tidemark mount`, or the old primary written with its tracker stopped).

**Both sides changed** (DRBD's split brain): a block in both sets is a conflict. Failback counts
them and refuses unless `discard` names the side whose changes are thrown away: `primary` (the
mirror's content wins: copied to the old primary) or `mirror` (the old primary's content wins:
copied to the mirror). With `full` the sides cannot be told apart, so `discard` is required. With
no conflict, the mirror's content wins (it was the production disk).

**What it overwrites is kept** (sinks/storage/saved_blocks.py: `failback-saved.img` and its bitmap
in the mirror's state folder): every differing block's old content is saved and made durable
before it is overwritten, and dropped only after the candidates of both sides compare equal.

Afterwards the old primary is fsynced and byte-identical to the mirror on every candidate block,
the mirror is no longer promoted, its recovery points and undo data (no longer valid: the
promoted side was written without undo) are dropped, and the applier resumes at `resume` (the
end of the change-set stream as the caller found it), so change sets the old primary emitted
before the failback are not applied on top of the resynchronised mirror.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xxhash
from pyroaring import BitMap

from tidemark.core.image_io import fsync_dir

from ..exceptions import FailbackConflictError, FailbackError
from ..layout import MirrorLayout, exclusive, no_readers
from ..mirror import Mirror
from ..storage.block_bitmap import load_bitmap
from ..storage.mirror_file import MirrorFile
from ..storage.progress import PAUSED
from ..storage.saved_blocks import SavedBlocks

DISCARD_PRIMARY = "primary"
DISCARD_MIRROR = "mirror"
SAVED = "failback-saved"


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
    copied: int  # blocks that differed and were overwritten (on the side whose changes were discarded)
    block_size: int
    full: bool
    conflicts: int  # blocks changed on both sides since the failover point (unknown with `full`: 0)
    overwritten: str  # "primary" or "mirror": the side that was written
    generation: int

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
    promoted_changed: BitMap | None = None,
    resume: StreamPosition | None = None,
    full: bool = False,
    discard: str | None = None,
    fence: Callable[[], int] | None = None,
    on_block: Callable[[int, int], None] | None = None,
) -> FailbackReport:
    """`fence()` makes the old primary's site the primary again once both sides are equal and
    returns the new generation (None: nothing to fence, where no registry exists)."""
    if discard not in (None, DISCARD_PRIMARY, DISCARD_MIRROR):
        raise FailbackError(f"--discard {discard}: say `primary` or `mirror`")
    layout = MirrorLayout.of(state_dir, site, volume)
    purpose = "fail back"
    with exclusive(layout, purpose), no_readers(layout, purpose), Mirror.open_existing(layout, mirror_path) as mirror:
        state = mirror.progress
        if state.failover_rp is None:
            raise FailbackError(
                f"the mirror of volume {volume!r} at site {site!r} was not failed over; there is nothing to fail back"
            )
        bs, size = state.block_size, state.volume_size
        primary_side = load_bitmap(layout.failover_reverted) | (primary_changed or BitMap())
        mirror_side = load_bitmap(layout.promoted_writes) | (promoted_changed or BitMap())
        conflicts = 0 if full else len(primary_side & mirror_side)
        where = f"volume {volume!r} (mirror {state.mirror_path} at site {site!r}, old primary {primary})"
        if full and discard is None:
            raise FailbackConflictError(
                f"failback --full of {where} cannot tell which side changed a block: pass "
                "--discard primary (the mirror's content wins) or --discard mirror (the old primary's wins)"
            )
        if conflicts and discard is None:
            raise FailbackConflictError(
                f"{conflicts} blocks of {where} changed on both sides since recovery point "
                f"{state.failover_rp}: pass --discard primary to keep the mirror's content, or "
                "--discard mirror to keep the old primary's (what is overwritten is kept until verified)"
            )
        candidates = BitMap(range(size // bs)) if full else primary_side | mirror_side
        with open_old_primary(primary, size) as old:
            source, target = (old, mirror.image) if discard == DISCARD_MIRROR else (mirror.image, old)
            with SavedBlocks(layout.root, SAVED, size, bs) as saved:
                copied = copy_blocks(source, target, bs, candidates, saved, on_block)
                _verify_equal(source, target, bs, candidates, where, saved)
                saved.drop()
        generation = fence() if fence is not None else state.generation
        overwritten = DISCARD_MIRROR if discard == DISCARD_MIRROR else DISCARD_PRIMARY
        report = FailbackReport(
            volume, state.failover_rp, len(candidates), copied, bs, full, conflicts, overwritten, generation
        )
        state.generation = generation
        _swap_roles(mirror, layout, resume)
        return report


def open_old_primary(path: Path, size: int) -> MirrorFile:
    if not path.exists():
        raise FailbackError(f"old primary image {path} does not exist; pass --primary IMAGE")
    actual = path.stat().st_size
    if actual != size:
        raise FailbackError(
            f"old primary {path} is {actual} bytes but the volume is {size} bytes; "
            "pass the image of this volume as --primary"
        )
    return MirrorFile(path, size, create=False)


def copy_blocks(
    source: MirrorFile,
    target: MirrorFile,
    bs: int,
    candidates: BitMap,
    saved: SavedBlocks,
    on_block: Callable[[int, int], None] | None,
) -> int:
    """Copy the differing candidates from source to target; each overwritten block is saved first."""
    differing = BitMap()
    for done, block in enumerate(candidates, start=1):
        theirs = target.pread(block * bs, bs)
        if xxhash.xxh3_64_digest(source.pread(block * bs, bs)) != xxhash.xxh3_64_digest(theirs):
            saved.save(block, theirs)
            differing.add(block)
        if on_block is not None:
            on_block(done, 2 * len(candidates))
    saved.commit()
    for block in differing:
        target.pwrite(block * bs, source.pread(block * bs, bs))
    target.fsync()
    if on_block is not None:
        on_block(2 * len(candidates), 2 * len(candidates))
    return len(differing)


def _verify_equal(
    source: MirrorFile, target: MirrorFile, bs: int, candidates: BitMap, where: str, saved: SavedBlocks
) -> None:
    for block in candidates:
        if xxhash.xxh3_64_digest(source.pread(block * bs, bs)) != xxhash.xxh3_64_digest(target.pread(block * bs, bs)):
            raise FailbackError(
                f"failback of {where}: block {block} (offset {block * bs}) still differs after the copy; "
                f"was a side written during the failback? The overwritten blocks are kept in {saved.image} "
                f"(block list {saved.bitmap}); stop every writer and run failback again"
            )


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
    fsync_dir(layout.root)
