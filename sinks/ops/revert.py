"""`tidemark revert`: bring a stopped mirror back to a retained recovery point."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..layout import MirrorLayout, exclusive, no_readers
from ..mirror import Mirror, RevertReport
from ..storage.pins import pinned


def revert_mirror(
    state_dir: Path,
    site: str,
    volume: str,
    mirror_path: Path,
    to_rp: int,
    on_block: Callable[[int, int], None] | None = None,
) -> RevertReport:
    """Rewrite only the blocks changed since `to_rp`; the mirror is then PAUSED at `to_rp`.

    Takes the mirror's lock, so it refuses to run while `tidemark mirror` applies to it or while
    `tidemark mount` serves one of its points. An interrupted revert is finished by running it
    again (the applier refuses to start until then).
    """
    layout = MirrorLayout.of(state_dir, site, volume)
    purpose = f"revert to recovery point {to_rp}"
    with (
        exclusive(layout, purpose),
        no_readers(layout, purpose),
        pinned(layout.root, to_rp, "revert"),
        Mirror.open_existing(layout, mirror_path) as mirror,
    ):
        return mirror.revert(to_rp, on_block)
