"""Recognise a full filesystem under a mirror and say what to do about it.

The image reports ENOSPC (or EDQUOT, or EFBIG under a file size limit) as OSError; RocksDB (the
undo store) reports it as a plain Exception whose message names the condition.
"""

from __future__ import annotations

import errno

from ..exceptions import MirrorDiskFullError
from ..layout import MirrorLayout
from .progress import Progress

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_ROCKSDB_FULL = ("No space left on device", "Disk quota exceeded", "File too large")


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if isinstance(exc, MirrorDiskFullError):
        return True
    return any(text in str(exc) for text in _ROCKSDB_FULL)


def disk_full_error(
    layout: MirrorLayout, progress: Progress, changeset_id: int, where: str, offset: int, exc: BaseException
) -> MirrorDiskFullError:
    place = f"{where} at offset {offset}" if where == "the mirror" else where
    return MirrorDiskFullError(
        f"disk full while applying change set {changeset_id} of volume {layout.volume!r} at site "
        f"{layout.site!r}: writing {place} failed ({exc}); the mirror {progress.mirror_path} stays "
        f"recorded at change set {progress.changeset_id} and the set is applied again once space is "
        f"freed on the filesystem of {progress.mirror_path} (image) or {layout.root} (undo store, "
        "spool, progress): free or grow it; expiring recovery points (--retain) shrinks the undo store"
    )
