"""Opening a volume's source image: one place that checks it exists and has the volume's size."""

from __future__ import annotations

import os
from pathlib import Path

from tidemark.core.image_io import open_image

from .exceptions import ImageSizeError, TrackerError


def open_volume_image(path: Path, volume: str, volume_size: int, *, writable: bool) -> int:
    """An fd of the image, refusing one whose size differs from the registered volume size."""
    try:
        fd = open_image(path, writable=writable)
    except OSError as exc:
        mode = "read-write" if writable else "for reading"
        raise TrackerError(
            f"cannot open image {path} of volume {volume!r} {mode}: {exc.strerror} "
            f"(create it with: truncate -s {volume_size} {path})"
        ) from exc
    size = os.fstat(fd).st_size
    if size != volume_size:
        os.close(fd)
        raise ImageSizeError(
            f"image {path} is {size} bytes but volume {volume!r} is {volume_size} bytes: "
            f"resize the image (truncate -s {volume_size} {path}) or use the image of the right volume"
        )
    return fd
