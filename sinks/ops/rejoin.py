"""`tidemark rejoin`: after `failover --reverse`, the old primary's image becomes a mirror of the new primary.

The common point is the recovery point the promoted mirror (site `from_site`) failed over at. The
blocks that can differ between the old primary's image and the new primary's are the union of the
bitmaps since that point: those the failover reverted (changed on the old primary after it) and
those of every change set sealed after it (the old primary's last sets before the fence, and the
new primary's since), read from the change-set topic by the caller (`changed`; `resume` is the
position after the last of them). Only those blocks are compared, and the differing ones are
copied from the new primary's image; each overwritten block is kept first (SavedBlocks,
`rejoin-saved` in the old primary's new mirror state folder). Then a mirror state is written for
the old primary's site at `resume`: `tidemark mirror --site SITE --path IMAGE` applies the new
primary's later change sets. A block the new primary wrote during the copy is copied newer than
`resume`; the stream writes it again (applying is idempotent), so the mirror is consistent once it
has applied past the copy.

The candidates are compared once more after the copy: the kept blocks are dropped when every one
matches, else they stay (a block written meanwhile on the tracked new primary differs until the
stream brings it). The new mirror holds no recovery point until the next one it applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xxhash
from pyroaring import BitMap

from ..exceptions import MirrorStateError
from ..layout import MirrorLayout, exclusive
from ..storage import progress as progress_file
from ..storage.block_bitmap import load_bitmap
from ..storage.mirror_file import MirrorFile
from ..storage.progress import PAUSED, Progress
from ..storage.saved_blocks import SavedBlocks
from .failback import StreamPosition, copy_blocks, open_old_primary

SAVED = "rejoin-saved"


@dataclass(frozen=True)
class RejoinReport:
    candidates: int
    copied: int
    still_differing: int  # written on the new primary during the copy: the stream brings them
    saved_kept: Path | None  # where the overwritten blocks are kept (None: dropped, all verified)
    changeset_id: int  # the mirror resumes after this change set
    generation: int


def rejoin(
    state_dir: Path,
    volume: str,
    site: str,
    image: Path,
    from_site: str,
    changed: BitMap,
    resume: StreamPosition | None,
    on_block: Callable[[int, int], None] | None = None,
) -> RejoinReport:
    promoted_layout = MirrorLayout.of(state_dir, from_site, volume)
    promoted = progress_file.load(promoted_layout.progress)
    if promoted is None or promoted.failover_rp is None:
        raise MirrorStateError(
            f"the mirror of volume {volume!r} at site {from_site!r} was not failed over: there is no "
            f"new primary to rejoin; run `tidemark failover --reverse --volume {volume} --site {from_site}` first"
        )
    layout = MirrorLayout.of(state_dir, site, volume)
    with exclusive(layout, "rejoin as a mirror"):
        if progress_file.load(layout.progress) is not None:
            raise MirrorStateError(
                f"site {site!r} already keeps a mirror of volume {volume!r} under {layout.root}; "
                "rejoin makes a new one: remove that folder if it is stale"
            )
        bs, size = promoted.block_size, promoted.volume_size
        candidates = load_bitmap(promoted_layout.failover_reverted) | changed
        with (
            open_old_primary(image, size) as old,
            MirrorFile(Path(promoted.mirror_path), size, create=False, writable=False) as new,
            SavedBlocks(layout.root, SAVED, size, bs) as saved,
        ):
            copied = copy_blocks(new, old, bs, candidates, saved, on_block)
            still = sum(
                xxhash.xxh3_64_digest(new.pread(b * bs, bs)) != xxhash.xxh3_64_digest(old.pread(b * bs, bs))
                for b in candidates
            )
            kept = saved.image if still else None
            if not still:
                saved.drop()
        state = _mirror_state(volume, site, image, promoted, resume)
        progress_file.save(layout.progress, state)
        return RejoinReport(len(candidates), copied, still, kept, state.changeset_id, state.generation)


def _mirror_state(volume: str, site: str, image: Path, promoted: Progress, resume: StreamPosition | None) -> Progress:
    """The old primary's new mirror state: at `resume`, or where the promoted mirror failed over."""
    state = Progress(volume, site, str(Path(image).resolve()), promoted.volume_size, promoted.block_size)
    if resume is not None and resume.changeset_id > promoted.changeset_id:
        state.partition, state.next_offset = resume.partition, resume.next_offset
        state.changeset_id, state.seq_last, state.sealed_at = resume.changeset_id, resume.seq_last, resume.sealed_at
    else:
        state.partition, state.next_offset = promoted.partition, promoted.next_offset
        state.changeset_id, state.seq_last, state.sealed_at = (
            promoted.changeset_id, promoted.seq_last, promoted.sealed_at,
        )  # fmt: skip
    state.state, state.generation = PAUSED, promoted.generation
    state.message = (
        f"rejoined as a mirror of the primary at site {promoted.site!r} (generation {promoted.generation}) "
        f"after a delta resync; resumes after change set {state.changeset_id}"
    )
    return state
