"""One site's mirror of one volume: the image, its undo data and its progress, kept consistent.

Apply order (invariant 3: recoverable to the last complete recovery point at every instant):
(1) save the pre-image of every block the set overwrites under the current undo base (synced),
(2) write the mirror and fsync, (3) record progress atomically. A crash between any two steps is
repaired by re-applying the same change set: the undo entries keep the first pre-image.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .apply.changeset_buffer import SealedChangeSet
from .exceptions import (
    MirrorStateError,
    PromotedMirrorError,
    ResyncNeededError,
    UnknownRecoveryPointError,
)
from .layout import MirrorLayout
from .storage import progress as progress_file
from .storage.disk_full import disk_full_error, is_disk_full
from .storage.mirror_file import MirrorFile, RunWriter
from .storage.pins import pinned_points
from .storage.point_view import PointView
from .storage.progress import PAUSED, REPLICATING, RESYNC_NEEDED, PointRecord, Progress
from .storage.retention import Retention
from .storage.undo_store import UndoStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevertReport:
    rp_id: int
    blocks: int
    bytes: int


class Mirror:
    def __init__(self, layout: MirrorLayout, progress: Progress, image: MirrorFile, undo: UndoStore) -> None:
        self.layout = layout
        self.progress = progress
        self.image = image
        self.undo = undo

    @property
    def block_size(self) -> int:
        return self.progress.block_size

    @classmethod
    def create_or_open(cls, layout: MirrorLayout, path: Path, volume_size: int, block_size: int) -> Mirror:
        """For the applier: a new mirror (sparse file) or the one this state directory tracks."""
        layout.ensure()
        path = Path(path).resolve()
        state = progress_file.load(layout.progress)
        if state is None:
            if path.exists():
                raise MirrorStateError(
                    f"{path} exists but the state directory {layout.root} has no record of it; "
                    "remove the file to start a new mirror, or set TIDEMARK_STATE_DIR to the "
                    "state directory it was created with"
                )
            state = Progress(layout.volume, layout.site, str(path), volume_size, block_size)
            progress_file.save(layout.progress, state)
        elif not path.exists() and str(path) == state.mirror_path:
            raise MirrorStateError(
                f"mirror {path} is missing but {layout.progress} records change set "
                f"{state.changeset_id} as applied to it; restore the file, or remove {layout.root} "
                "to start a new mirror from the beginning of the stream"
            )
        elif (state.volume_size, state.block_size) != (volume_size, block_size):
            raise MirrorStateError(
                f"volume {layout.volume!r} is now {volume_size} bytes in blocks of {block_size}, "
                f"its mirror {state.mirror_path} was made for {state.volume_size} bytes in blocks "
                f"of {state.block_size}; create a new mirror (another --path and state directory)"
            )
        return cls._open(layout, state, path, create=True)

    @classmethod
    def open_existing(cls, layout: MirrorLayout, path: Path) -> Mirror:
        """For revert and verify: the mirror must exist and match its recorded state."""
        state = progress_file.load(layout.progress)
        if state is None:
            raise MirrorStateError(
                f"no mirror of volume {layout.volume!r} at site {layout.site!r} under {layout.root}; "
                "check --site and TIDEMARK_STATE_DIR"
            )
        return cls._open(layout, state, Path(path).resolve(), create=False)

    @classmethod
    def _open(cls, layout: MirrorLayout, state: Progress, path: Path, create: bool) -> Mirror:
        if str(path) != state.mirror_path:
            raise MirrorStateError(
                f"the mirror of volume {layout.volume!r} at site {layout.site!r} is "
                f"{state.mirror_path}, not {path}; pass --path/--mirror {state.mirror_path}"
            )
        image = MirrorFile(path, state.volume_size, create=create)
        try:
            undo = UndoStore(layout.undo, state.block_size)
        except BaseException:
            image.close()
            raise
        mirror = cls(layout, state, image, undo)
        mirror._finish_revert_cleanup()
        return mirror

    def save(self) -> None:
        progress_file.save(self.layout.progress, self.progress)

    def _finish_revert_cleanup(self) -> None:
        if self.progress.drop_undo_from is not None:
            self.undo.drop_from(self.progress.drop_undo_from)
            self.progress.drop_undo_from = None
            self.save()

    def require_not_reverting(self) -> None:
        target = self.progress.reverting_to
        if target is not None:
            raise MirrorStateError(
                f"a revert of volume {self.layout.volume!r} to recovery point {target} was "
                f"interrupted; finish it with `tidemark revert --volume {self.layout.volume} "
                f"--mirror {self.progress.mirror_path} --site {self.layout.site} --to {target}`"
            )

    def require_not_promoted(self, purpose: str) -> None:
        """A failed-over mirror is the production disk: nothing may apply or revert under it."""
        state = self.progress
        if state.failover_rp is not None:
            raise PromotedMirrorError(
                f"cannot {purpose}: the mirror {state.mirror_path} of volume {self.layout.volume!r} "
                f"at site {self.layout.site!r} was failed over at recovery point {state.failover_rp} "
                f"and is now the production disk; run `tidemark failback --volume "
                f"{self.layout.volume} --mirror {state.mirror_path} --site {self.layout.site} "
                "--primary OLD_PRIMARY_IMAGE` first"
            )

    def read_blocks(self, first: int, count: int) -> bytes:
        return self.image.pread(first * self.block_size, count * self.block_size)

    def apply(self, changeset: SealedChangeSet, partition: int, next_offset: int) -> int:
        """Apply a verified change set; durable on return. Returns the bytes written.

        A full disk (mirror, undo store or progress file) raises MirrorDiskFullError and leaves
        the recorded progress where it was, so the same set is applied again later.
        """
        where = "the undo store"
        offset = changeset.extents[0].offset if changeset.extents else 0
        try:
            base = self.progress.rp_id
            if base is not None and changeset.extents:
                blocks = sorted(set(changeset.blocks(self.block_size)))
                self.undo.save_pre_images(base, blocks, self.read_blocks)
            where = "the mirror"
            written = 0
            for extent in changeset.extents:
                offset = extent.offset
                if extent.op == "WRITE":
                    self.image.pwrite(extent.offset, changeset.data(extent))
                else:
                    self.image.zero(extent.offset, extent.length)
                written += extent.length
            self.image.fsync()
            where, offset = "the progress file", 0
            self._record(changeset, partition, next_offset)
        except Exception as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.layout, self.progress, changeset.changeset_id, where, offset, exc) from exc
            raise
        return written

    def _record(self, changeset: SealedChangeSet, partition: int, next_offset: int) -> None:
        """Save the new progress; the in-memory record changes only once the file did."""
        state = dataclasses.replace(self.progress, points=list(self.progress.points))
        state.changeset_id = changeset.changeset_id
        state.seq_last = changeset.seq_last
        state.sealed_at = changeset.sealed_at
        state.partition = partition
        state.next_offset = next_offset
        state.state, state.message = REPLICATING, None
        state.generation = max(state.generation, changeset.generation)
        if changeset.rp_id is not None:
            state.rp_id = changeset.rp_id
            state.points.append(
                PointRecord(
                    changeset.rp_id,
                    changeset.changeset_id,
                    changeset.seq_last,
                    next_offset,
                    changeset.sealed_at,
                    changeset.generation,
                )
            )
        progress_file.save(self.layout.progress, state)
        self.progress = state

    def reopen_undo(self) -> None:
        """A fresh undo store handle: RocksDB refuses every write after one failed on a full disk."""
        try:
            self.undo.close()
        except Exception as exc:  # rocksdict reports the earlier write error again on close
            log.warning("closing the undo store %s after an error: %s", self.layout.undo, exc)
        self.undo = UndoStore(self.layout.undo, self.block_size)

    def mark_resync_needed(self, message: str) -> None:
        """The stream can no longer bring this mirror up to date: only `tidemark resync` can."""
        self.progress.state, self.progress.message = RESYNC_NEEDED, message
        self.save()

    def require_not_resync_needed(self) -> None:
        if self.progress.state == RESYNC_NEEDED:
            raise ResyncNeededError(
                f"the mirror {self.progress.mirror_path} of volume {self.layout.volume!r} at site "
                f"{self.layout.site!r} needs a resync: {self.progress.message}; quiesce the source, "
                f"then run `tidemark resync --volume {self.layout.volume} --mirror "
                f"{self.progress.mirror_path} --site {self.layout.site} --source SOURCE_IMAGE`"
            )

    def expire(self, retention: Retention, now_ms: int) -> list[int]:
        """Forget expired recovery points and reclaim their undo data (oldest first).

        A pinned point (storage/pins.py: mounted, being reverted to, failed over to or verified)
        is kept whatever the retention says, and so is the undo data reading it needs."""
        expired = set(retention.expired(self.progress.points, now_ms)) - pinned_points(self.layout.root)
        if expired:
            self.progress.points = [p for p in self.progress.points if p.rp_id not in expired]
            self.save()
        if self.progress.points:
            self.undo.drop_before(min(p.rp_id for p in self.progress.points))
        return sorted(expired)

    def point(self, rp_id: int) -> PointRecord:
        """A retained point; a point past a gap the mirror stopped at is refused, naming the gap."""
        found = self.progress.point(rp_id)
        state = self.progress
        if found is None and state.state == RESYNC_NEEDED and rp_id > (state.rp_id or 0):
            raise UnknownRecoveryPointError(
                f"recovery point {rp_id} of volume {self.layout.volume!r} lies past the gap at which the "
                f"mirror at site {self.layout.site!r} stopped: {state.message}; it holds points up to "
                f"{state.rp_id if state.rp_id is not None else 'none'} until `tidemark resync` repairs it"
            )
        if found is None:
            retained = ", ".join(map(str, self.progress.retained())) or "none"
            raise UnknownRecoveryPointError(
                f"the mirror of volume {self.layout.volume!r} at site {self.layout.site!r} does not "
                f"hold recovery point {rp_id}; retained points: {retained}"
            )
        return found

    def view(self, rp_id: int) -> PointView:
        self.point(rp_id)
        self.require_not_reverting()
        self.require_not_promoted(f"read recovery point {rp_id}")
        return PointView(self.image, self.undo, rp_id, self.block_size)

    def revert(self, rp_id: int, on_block: Callable[[int, int], None] | None = None) -> RevertReport:
        """Bring the mirror back to recovery point rp_id, rewriting only the blocks changed since.

        Streams the undo store in key order (one roaring bitmap of blocks in memory, never a
        per-block dict), so memory stays bounded whatever the size of the change.

        `on_block(done, total)` reports progress. Afterwards the mirror is PAUSED at rp_id and an
        applier resumes with the change set after the one that completed it.
        """
        self.require_not_promoted(f"revert to recovery point {rp_id}")
        point = self.point(rp_id)
        state = self.progress
        if state.reverting_to is not None and rp_id > state.reverting_to:
            raise MirrorStateError(
                f"a revert to recovery point {state.reverting_to} was interrupted; revert to it "
                f"(or to an older point) before going to {rp_id}"
            )
        state.reverting_to, state.state = rp_id, PAUSED
        self.save()
        total = len(self.undo.changed_since(rp_id))
        done = 0
        writer = RunWriter(self.image, self.block_size)
        for block, content in self.undo.contents_at(rp_id):
            writer.add(block, content)
            done += 1
            if on_block is not None and (done % 4096 == 0 or done == total):
                on_block(done, total)
        writer.flush()
        self.image.fsync()
        state.changeset_id, state.seq_last = point.changeset_id, point.seq_last
        state.sealed_at, state.next_offset = point.sealed_at, point.next_offset
        state.rp_id, state.generation = rp_id, point.generation
        state.points = [p for p in state.points if p.rp_id <= rp_id]
        state.message = f"reverted to recovery point {rp_id}"
        state.reverting_to, state.drop_undo_from = None, rp_id
        self.save()
        self._finish_revert_cleanup()
        return RevertReport(rp_id, done, done * self.block_size)

    def close(self) -> None:
        try:
            self.undo.close()
        except Exception as exc:  # after a failed write (disk full) rocksdict reports it again here
            log.warning("closing the undo store %s: %s", self.layout.undo, exc)
        finally:
            self.image.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
