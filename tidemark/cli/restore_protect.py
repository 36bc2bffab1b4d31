"""`tidemark restore --protect`: the relocated destination handed to an NBD tracker.

The destination becomes the volume's primary under a new generation (`bump_generation`: the old
primary is fenced from the marker's place in the journal). The tracker's dirty bitmap is seeded,
durably and before the tracker starts, with the blocks where the destination differs from what
the mirror applied: the blocks the mirror changed since the point, and those the clients wrote
during the restore. The tracker starts "ahead" and drains them from the destination, so the
mirror follows the destination with no full copy. Blocks the mirror applies from the old
generation after the seed was taken (events still in the pipeline before the fence) are not in
it: stop the old primary first, and let its mirror catch up, as for a failover.
"""

from __future__ import annotations

from pathlib import Path

from pyroaring import BitMap

from tidemark.core.nbd.limits import ServerOptions
from tidemark.core.nbd.server import ReadyCallback
from tidemark.core.volumes import bump_generation, lookup_volume

from .context import AppContext


def seed_tracker(app: AppContext, volume: str, blocks: BitMap) -> None:
    """The blocks go into the dirty bitmap of the volume's tracker state (drained when it starts)."""
    from tidemark.producers.dirty_bitmap import DirtyBitmap

    dirty = DirtyBitmap(app.settings.volume_state_dir("trackers", volume) / "dirty.bitmap")
    dirty.add(blocks)
    dirty.persist()


def protect(
    app: AppContext,
    volume: str,
    image: Path,
    site: str | None,
    diverged: BitMap,
    address: tuple[str, int],
    ready: ReadyCallback,
    options: ServerOptions,
) -> int:
    """Fence, seed, and serve `image` through a tracker until SIGINT/SIGTERM; the new generation.

    `site`: the new primary's site (None: the registry's current primary site stays primary)."""
    from tidemark.producers.nbd.server import serve_nbd
    from tidemark.producers.read_profile import recorded
    from tidemark.producers.tracker import open_tracker

    if site is None:
        site = lookup_volume(app.clients, app.topics, volume).primary_site
    generation = bump_generation(app.clients, app.topics, volume, primary_site=site).generation
    seed_tracker(app, volume, diverged)
    with (
        open_tracker(app.settings, app.clients, app.topics, volume, image, site=site) as tracker,
        recorded(app.clients, app.topics, volume, tracker.block_size) as profile,
    ):
        serve_nbd(tracker, image, address[0], address[1], ready=ready, options=options, profile=profile)
    return generation
