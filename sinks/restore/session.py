"""A restore in progress: the point pinned and read live, the destination, the export, the copier.

`restoring` holds what a mount holds (the mirror's readers lock shared, a pin on the point, a
`LivePointView`) for as long as the relocation runs, claims the destination (record.py), and plans
the copy: the point's data blocks plus the destination's stale blocks, minus the relocated ones.
`Restore.start` runs the copier in a thread; when it finishes, the record turns complete and the
export serves the destination alone. A destination whose record is already complete is served
alone at once, with no mirror needed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyroaring import BitMap

from tidemark.core.image_io import file_data_ranges
from tidemark.core.metrics import stage_metrics
from tidemark.core.progress import OnProgress

from ..layout import DEFAULT_SITE, MirrorLayout, reading
from ..mount.live_view import LivePointView
from ..storage.pins import pinned
from .activity import ClientActivity
from .copier import Copier, CopyOptions, FirstBlocks
from .destination import Destination
from .export import RestoreExport
from .plan import pending_blocks, point_blocks
from .record import RestoreRecord, claim, load_record, save_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoreRequest:
    volume: str
    rp: int
    destination: Path
    site: str = DEFAULT_SITE


class Restore:
    def __init__(
        self,
        record: RestoreRecord,
        destination: Destination,
        export: RestoreExport,
        copier: Copier | None,
        view: LivePointView | None,
        release_point: Callable[[], None] | None = None,
    ) -> None:
        """`release_point`: lets the point go (view, pin, mirror lock) once the relocation is complete."""
        self.record = record
        self.destination = destination
        self.export = export
        self.view = view
        self._release_point = release_point
        self._copier = copier
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = threading.Event()  # set once the relocation is complete and recorded
        self.error: BaseException | None = None
        if record.complete:
            export.finish()
            self.done.set()

    @property
    def pending_blocks(self) -> int:
        return 0 if self._copier is None else len(self._copier.pending)

    @property
    def prestaged_blocks(self) -> int:
        """Pending blocks of the read profile, copied first (known once the copier started)."""
        return 0 if self._copier is None else len(self._copier.prestaged)

    def start(self, on_progress: OnProgress | None = None, on_done: Callable[[], None] | None = None) -> None:
        """Run the copier in a thread; `on_done` is called (from it) once the restore is complete."""
        if self._copier is None:
            if on_done is not None:
                on_done()
            return
        copier = self._copier

        def relocate() -> None:
            try:
                if copier.run(self._stop, on_progress):
                    self._complete()
                    if on_done is not None:
                        on_done()
            except BaseException as exc:
                self.error = exc
                log.exception("volume %s: relocation into %s failed", self.record.volume, self.destination.path)

        self._thread = threading.Thread(target=relocate, name=f"restore-{self.record.volume}", daemon=True)
        self._thread.start()

    def diverged_blocks(self) -> BitMap:
        """Where the destination may differ from the mirror as applied so far: the blocks the
        mirror changed since the point, and those the clients wrote (needs the point's view)."""
        if self.view is None:
            raise AssertionError("diverged_blocks needs the restore opened with need_point")
        self.view.undo.catch_up()
        with self.destination.lock:
            written = BitMap(self.destination.written)
        return self.view.undo.changed_since(self.view.rp_id) | written

    def _complete(self) -> None:
        """After the copier's last sync: the record says complete (durably), requests bypass the
        point, and the point is let go (unless kept for `diverged_blocks`)."""
        self.record = self.record.completed()
        save_record(self.destination.path, self.record)
        self.export.finish()
        if self._release_point is not None:
            self.view = None
            self._release_point()
        self.done.set()

    def stop(self) -> None:
        """Stop the copier (it syncs what it copied) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@contextmanager
def restoring(
    state_dir: Path,
    request: RestoreRequest,
    options: CopyOptions | None = None,
    activity: ClientActivity | None = None,
    need_point: bool = False,
    first: FirstBlocks | None = None,
) -> Iterator[Restore]:
    """The restore, with its locks and pin held until the block exits (the copier stopped first).

    A complete restore opens no mirror, unless `need_point` (to compare with what the mirror applied).
    `first`: blocks to relocate before the others (the volume's read profile)."""
    layout = MirrorLayout.of(state_dir, request.site, request.volume)
    activity = activity or ClientActivity()
    with ExitStack() as stack:
        point = stack.enter_context(ExitStack())  # closed early once the relocation is complete
        destination_path = request.destination.absolute()
        view: LivePointView | None = None
        record = None if need_point else _found_complete(destination_path, request)
        if record is None:
            point.enter_context(reading(layout))
            point.enter_context(pinned(layout.root, request.rp, "restore"))  # before the view checks the point
            view = point.enter_context(closing(LivePointView(layout, request.rp)))
            wanted = RestoreRecord(request.volume, request.rp, request.site, view.volume_size, view.block_size)
            record = claim(destination_path, wanted)
        destination = stack.enter_context(closing(Destination(destination_path, record.size, record.block_size)))
        copier = None
        if view is not None and not record.complete:
            pending = pending_blocks(_point_blocks(view), destination.stale_blocks(), destination.relocated)
            metrics = stage_metrics("restore", request.volume)
            metrics.restore_remaining(len(pending) * record.block_size)
            copier = Copier(view, destination, pending, activity, options, metrics, first)
        export = RestoreExport(request.volume, view or _NoPoint(), destination, activity)
        restore = Restore(record, destination, export, copier, view, None if need_point else point.close)
        try:
            yield restore
        finally:
            restore.stop()


def _found_complete(destination: Path, request: RestoreRequest) -> RestoreRecord | None:
    found = load_record(destination)
    if found is not None and found.complete and found.volume == request.volume and found.rp_id == request.rp:
        return found
    return None


def _point_blocks(view: LivePointView) -> BitMap:
    view.undo.catch_up()
    changed = view.undo.changed_since(view.rp_id)
    mirror_ranges = file_data_ranges(view.image.path, view.volume_size)
    return point_blocks(mirror_ranges, changed, view.block_size, view.volume_size)


class _NoPoint:
    """A complete restore reads nothing from a point."""

    def read(self, offset: int, length: int) -> bytes:
        raise AssertionError(f"read of [{offset}, {offset + length}) from the point of a complete restore")
