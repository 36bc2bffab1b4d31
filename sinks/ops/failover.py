"""`tidemark failover`: stop applying, bring the mirror to a recovery point and promote it.

Failover takes the mirror's lock (so no applier runs), fences the old primary (`fence`: the CLI
bumps the volume's generation with this site as primary, so the processor refuses every event of
the old generation from that position of the journal on, and trackers of it stop), reverts the
mirror to the chosen point (default: its last complete one), and records the promotion in its
progress: state FAILED_OVER, the point, the time and the generation. The fence comes after the
checks (a mirror with no point is never fenced into) and before the revert: once the mirror is
reverted nothing of the old generation can be applied anywhere. A rerun after a crash fences again
(one generation more, harmless). The applier, revert and point mounts refuse a promoted mirror; it is the
production disk now, written through `tidemark mount --volume V` (no --rp), which records every
block it writes.

Before the revert it saves the set of blocks the revert rewrites: they changed on the old
primary after the failover point. With the blocks written on the promoted side and the change
sets the old primary still emitted (read from Kafka at failback), that is everything failback
has to compare: its cost follows the change, not the disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from pyroaring import BitMap

from ..exceptions import MirrorStateError
from ..layout import MirrorLayout, exclusive, no_readers
from ..mirror import Mirror
from ..storage.block_bitmap import load_bitmap, save_bitmap
from ..storage.pins import pinned
from ..storage.progress import FAILED_OVER, Progress


@dataclass(frozen=True)
class FailoverReport:
    volume: str
    site: str
    mirror_path: str
    rp_id: int
    at_ms: int
    reverted_blocks: int
    generation: int
    progress: Progress


def failover(
    state_dir: Path,
    site: str,
    volume: str,
    mirror_path: Path,
    to_rp: int | None = None,
    on_block: Callable[[int, int], None] | None = None,
    fence: Callable[[], int] | None = None,
) -> FailoverReport:
    """`fence()` makes this site the primary and returns the new generation (None: a drill that
    fences nothing, used where no registry exists)."""
    layout = MirrorLayout.of(state_dir, site, volume)
    purpose = "fail over"
    with ExitStack() as stack:
        stack.enter_context(exclusive(layout, purpose))
        stack.enter_context(no_readers(layout, purpose))
        mirror = stack.enter_context(Mirror.open_existing(layout, mirror_path))
        mirror.require_not_promoted(purpose)
        rp = to_rp if to_rp is not None else mirror.progress.rp_id
        if rp is None:
            raise MirrorStateError(
                f"the mirror of volume {volume!r} at site {site!r} holds no complete recovery "
                "point yet; there is nothing consistent to fail over to"
            )
        mirror.point(rp)
        stack.enter_context(pinned(layout.root, rp, "failover"))
        generation = fence() if fence is not None else mirror.progress.generation
        # A rerun after a crash between revert and promotion finds the undo data gone: keep
        # what the first attempt saved (failback removes the file, so it is never stale).
        reverted = load_bitmap(layout.failover_reverted) | mirror.undo.changed_since(rp)
        save_bitmap(layout.failover_reverted, reverted)
        save_bitmap(layout.promoted_writes, BitMap())
        mirror.revert(rp, on_block)
        state = mirror.progress
        state.failover_rp, state.failover_at = rp, int(time.time() * 1000)
        state.state, state.generation = FAILED_OVER, generation
        state.message = f"failed over at recovery point {rp}; the mirror is the production disk"
        mirror.save()
        return FailoverReport(volume, site, state.mirror_path, rp, state.failover_at, len(reverted), generation, state)
