"""`tidemark mount`: a mirror served as an NBD export, with no restore first.

With a recovery point: that point, straight from the mirror and its undo data, while the
applier may keep applying (`LivePointView`); read-only, or `writable` with a copy-on-write
overlay. It holds the mirror's readers lock shared, so revert, failover and failback wait for it,
and pins its point (storage/pins.py), so the applier's retention keeps it while it is mounted.
Without a recovery point, on a failed-over mirror: the promoted volume itself, read-write, under
the mirror's exclusive lock, recording the blocks it writes for failback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tidemark.core.nbd.export import BlockingExport

from ..exceptions import MirrorStateError
from ..layout import DEFAULT_SITE, MirrorLayout, exclusive, reading
from ..storage import progress as progress_file
from ..storage.mirror_file import MirrorFile
from ..storage.pins import pinned
from ..storage.private import private_folder
from .exports import PointExport, PromotedExport
from .live_view import LivePointView
from .overlay import Overlay, OverlayOwner


@dataclass(frozen=True)
class MountRequest:
    volume: str
    rp: int | None = None  # None: the promoted volume of a failed-over mirror
    site: str = DEFAULT_SITE
    writable: bool = False
    overlay: Path | None = None  # default: <state>/mirrors/<site>/<volume>/overlays/rp-<rp>.img


def default_overlay(layout: MirrorLayout, rp_id: int) -> Path:
    return layout.overlays / f"rp-{rp_id}.img"


@contextmanager
def mounted(state_dir: Path, request: MountRequest) -> Iterator[BlockingExport]:
    """The export backend, with the locks it needs held until the block exits."""
    layout = MirrorLayout.of(state_dir, request.site, request.volume)
    with ExitStack() as stack:
        if request.rp is None:
            stack.enter_context(exclusive(layout, "serve the promoted volume"))
            yield stack.enter_context(closing(_promoted(layout)))
            return
        stack.enter_context(reading(layout))
        stack.enter_context(pinned(layout.root, request.rp, "mount"))  # before the view checks the point
        view = stack.enter_context(closing(LivePointView(layout, request.rp)))
        overlay = None
        if request.writable:
            if request.overlay is None:
                private_folder(layout.overlays)
            path = request.overlay or default_overlay(layout, request.rp)
            owner = OverlayOwner(request.volume, request.rp, view.volume_size, view.block_size)
            overlay = stack.enter_context(closing(Overlay(path, owner, view.image.path)))
        yield PointExport(request.volume, view, overlay)


def _promoted(layout: MirrorLayout) -> PromotedExport:
    state = progress_file.load(layout.progress)
    if state is None or state.failover_rp is None:
        raise MirrorStateError(
            f"the mirror of volume {layout.volume!r} at site {layout.site!r} is not failed over; "
            "mount a recovery point with --rp, or run `tidemark failover` first"
        )
    image = MirrorFile(Path(state.mirror_path), state.volume_size, create=False)
    return PromotedExport(layout, image, state.block_size)
