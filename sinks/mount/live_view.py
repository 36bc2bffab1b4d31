"""A retained recovery point read while the applier may keep applying to the same mirror.

The applier saves a block's pre-image (synced) before it overwrites the block. So a read goes:
(1) read the mirror range, (2) catch up with the undo store, (3) check that the point is still
retained, (4) for every block in the range take the undo entry with the smallest base >= the
point, if any, else the bytes read in (1). If (1) saw a block the applier had already changed,
its undo entry was durable before that change, hence before (2): the entry wins. If (1) saw an
unchanged block, no entry (or an entry holding the same bytes) exists. Entries are never
replaced, so a block found once is cached (one roaring bitmap per base, never a per-block dict);
only blocks without an entry are looked up again.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path
from types import TracebackType

from pyroaring import BitMap

from ..exceptions import MirrorStateError, PromotedMirrorError, UnknownRecoveryPointError
from ..layout import MirrorLayout
from ..storage import progress as progress_file
from ..storage.mirror_file import MirrorFile
from ..storage.private import private_folder
from ..storage.progress import Progress
from ..storage.undo_store import UndoStore


class LivePointView:
    """Read-only access to recovery point `rp_id`; thread-safe; never writes mirror or undo."""

    def __init__(self, layout: MirrorLayout, rp_id: int, mirror_path: Path | None = None) -> None:
        self.layout = layout
        self.rp_id = rp_id
        state = _usable_state(layout, None if mirror_path is None else Path(mirror_path).resolve(), rp_id)
        self.volume_size = state.volume_size
        self.block_size = state.block_size
        self._progress_stat = _stat(layout.progress)
        self._found: dict[int, BitMap] = {}  # base -> blocks whose content at rp_id its entries hold
        self._closed = False
        self._expired: str | None = None  # why the point can no longer be served, once it cannot
        self._lock = threading.Lock()  # the follower's catch-up and lookups are not concurrent-safe
        self.image = MirrorFile(Path(state.mirror_path), state.volume_size, create=False, writable=False)
        private_folder(layout.followers)
        self._follower = layout.followers / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self.undo = UndoStore(layout.undo, state.block_size, follower=self._follower)
        except BaseException:
            self.image.close()
            raise

    def read(self, offset: int, length: int) -> bytes:
        bs = self.block_size
        first, last = offset // bs, (offset + length - 1) // bs
        base_bytes = self.image.pread(first * bs, (last - first + 1) * bs)
        saved = self._saved_blocks(first, last)
        if not saved:
            return base_bytes[offset - first * bs : offset - first * bs + length]
        data = bytearray(base_bytes)
        for block, content in saved.items():
            at = (block - first) * bs
            data[at : at + bs] = content
        start = offset - first * bs
        return bytes(data[start : start + length])

    def read_block(self, block: int) -> bytes:
        return self.read(block * self.block_size, self.block_size)

    def _saved_blocks(self, first: int, last: int) -> dict[int, bytes]:
        """Undo content of the blocks in [first, last] changed since the point (after the mirror read)."""
        with self._lock:
            self.undo.catch_up()
            self._check_retained()
            bases: list[int] | None = None
            found: dict[int, bytes] = {}
            for block in range(first, last + 1):
                base = next((b for b, blocks in self._found.items() if block in blocks), None)
                if base is None:
                    if bases is None:
                        bases = self.undo.bases_from(self.rp_id)
                    base = next((b for b in bases if self.undo.get(b, block) is not None), None)
                    if base is None:
                        continue
                    self._found.setdefault(base, BitMap()).add(block)
                content = self.undo.get(base, block)
                if content is None:
                    raise MirrorStateError(
                        f"undo entry ({base}, {block}) of volume {self.layout.volume!r} vanished "
                        f"while recovery point {self.rp_id} was mounted"
                    )
                found[block] = content
            return found

    def _check_retained(self) -> None:
        """The applier may expire the point (and drop its undo data) while it is mounted: it
        cannot while the mount's pin stands, but a point expired before the pin was seen stays
        unservable: every later read fails too (the NBD server answers EIO and logs the reason),
        never returning another point's data."""
        if self._expired is not None:
            raise UnknownRecoveryPointError(self._expired)
        stat = _stat(self.layout.progress)
        if stat == self._progress_stat:
            return
        self._progress_stat = stat
        state = progress_file.load(self.layout.progress)
        if state is None or state.point(self.rp_id) is None:
            self._expired = (
                f"recovery point {self.rp_id} of volume {self.layout.volume!r} at site {self.layout.site!r} "
                "expired while mounted (retention of `tidemark mirror --retain`) and its undo data is gone: "
                "its content can no longer be served; unmount it and mount a retained point"
            )
            raise UnknownRecoveryPointError(self._expired)

    def close(self) -> None:
        """Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.undo.close()
        self.image.close()
        shutil.rmtree(self._follower, ignore_errors=True)

    def __enter__(self) -> LivePointView:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _usable_state(layout: MirrorLayout, mirror_path: Path | None, rp_id: int) -> Progress:
    state = progress_file.load(layout.progress)
    if state is None:
        raise MirrorStateError(
            f"no mirror of volume {layout.volume!r} at site {layout.site!r} under {layout.root}; "
            "check --site and TIDEMARK_STATE_DIR"
        )
    if mirror_path is not None and str(mirror_path) != state.mirror_path:
        raise MirrorStateError(
            f"the mirror of volume {layout.volume!r} at site {layout.site!r} is {state.mirror_path}, not {mirror_path}"
        )
    if state.failover_rp is not None:
        raise PromotedMirrorError(
            f"the mirror of volume {layout.volume!r} at site {layout.site!r} was failed over and is "
            "the production disk; its recovery points can no longer be mounted (mount it without --rp)"
        )
    if state.reverting_to is not None:
        raise MirrorStateError(
            f"a revert of volume {layout.volume!r} to recovery point {state.reverting_to} was "
            "interrupted; finish it with `tidemark revert` before mounting"
        )
    if state.point(rp_id) is None:
        retained = ", ".join(map(str, state.retained())) or "none"
        raise UnknownRecoveryPointError(
            f"the mirror of volume {layout.volume!r} at site {layout.site!r} does not hold recovery "
            f"point {rp_id}; retained points: {retained}"
        )
    return state


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_mtime_ns, info.st_ino
