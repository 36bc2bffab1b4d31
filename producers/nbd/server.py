"""The NBD tracker's entry points: the volume's raw image served through the core NBD server.

`serve_nbd` is the blocking entry point (runs until SIGINT/SIGTERM); `run_nbd` is the same
server as a coroutine that stops when an event is set (tests run it in a thread). Neither knows
about the CLI or how the tracker was built: they take any `WriteTracker`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tidemark.core.nbd.limits import ServerOptions
from tidemark.core.nbd.server import ReadyCallback, run_export, serve_export
from tidemark.producers.exceptions import TrackerError
from tidemark.producers.tracker_api import WriteTracker

from ..read_profile import ReadProfile
from .image import RawImage
from .tracking_export import TrackingExport


def open_image(tracker: WriteTracker, image_path: Path) -> RawImage:
    """The image, checked against the volume: same size, a whole number of tracker blocks."""
    if tracker.volume_size % tracker.block_size:
        raise TrackerError(
            f"volume {tracker.volume_name!r} size {tracker.volume_size} is not a multiple of its "
            f"block size {tracker.block_size}; register the volume with a size rounded to the block size"
        )
    return RawImage(image_path, tracker.volume_size, tracker.volume_name)


async def run_nbd(
    tracker: WriteTracker,
    image_path: Path,
    host: str,
    port: int,
    *,
    stop: asyncio.Event,
    ready: ReadyCallback | None = None,
    options: ServerOptions | None = None,
    profile: ReadProfile | None = None,
    native_writes: bool = True,
) -> None:
    """Serve until `stop` is set, then shut down cleanly (image synced, tracker flushed)."""
    export = TrackingExport(tracker, open_image(tracker, image_path), profile=profile, native_writes=native_writes)
    await run_export(export, host, port, stop=stop, ready=ready, options=options)


def serve_nbd(
    tracker: WriteTracker,
    image_path: Path,
    host: str,
    port: int,
    *,
    ready: ReadyCallback | None = None,
    options: ServerOptions | None = None,
    profile: ReadProfile | None = None,
    native_writes: bool = True,
) -> None:
    """Serve the image over NBD until SIGINT or SIGTERM (call from the main thread); `host` may be unix:PATH.

    `profile`: the read profile to record (published by its owner; closed by the caller after).
    `native_writes`: offer the C write path (`TrackingExport.inline_write_hooks`)."""
    export = TrackingExport(tracker, open_image(tracker, image_path), profile=profile, native_writes=native_writes)
    serve_export(export, host, port, ready=ready, options=options)
