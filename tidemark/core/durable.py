"""Atomic, durable replacement of small state files (write temp, fsync, rename, fsync the folder).

Shared by the trackers (epoch, dirty bitmap, activity log) and the mirrors (progress, bitmaps).
"""

from __future__ import annotations

import os
from pathlib import Path

from .image_io import fsync_dir


def write_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_or(path: Path, default: bytes) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return default
