"""The NBD tracker server: one raw image exported under the volume name, every write published.

`serve_nbd` is the blocking entry point (runs until SIGINT/SIGTERM); `run_nbd` is the same
server as a coroutine that stops when an event is set (tests run it in a thread). Neither knows
about the CLI or how the tracker was built: they take any `WriteTracker`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tidemark.producers.exceptions import TrackerError
from tidemark.producers.tracker_api import WriteTracker

from .commands import CommandHandler
from .connection import Connection
from .handshake import ExportInfo
from .image import RawImage

log = logging.getLogger(__name__)

ReadyCallback = Callable[[str, int], None]
DEFAULT_IO_THREADS = 16
SHUTDOWN_FLUSH_TIMEOUT = 30.0


class NbdServer:
    """Listens on host:port and serves `image` as the export named after the tracker's volume."""

    def __init__(self, tracker: WriteTracker, image: RawImage, *, io_threads: int = DEFAULT_IO_THREADS) -> None:
        self._tracker = tracker
        self._image = image
        self._executor = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="nbd-io")
        self._handler = CommandHandler(tracker, image, self._executor)
        self._export = ExportInfo(tracker.volume_name, image.size, tracker.block_size)
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Start listening; returns the bound address (port 0 picks a free port)."""
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            raise TrackerError(
                f"cannot listen on {host}:{port} for NBD clients: {exc.strerror}; choose another --listen"
            ) from exc
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await Connection(reader, writer, self._export, self._handler).run()
        finally:
            self._connections.discard(task)

    async def close(self) -> None:
        """Stop accepting, finish accepted requests, close clients, flush the tracker, close the image."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._image.sync)
            await loop.run_in_executor(self._executor, self._tracker.flush, SHUTDOWN_FLUSH_TIMEOUT)
        finally:
            self._executor.shutdown(wait=True)
            self._image.close()


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
) -> None:
    """Serve until `stop` is set, then shut down cleanly."""
    server = NbdServer(tracker, open_image(tracker, image_path))
    try:
        bound_host, bound_port = await server.start(host, port)
        name = tracker.volume_name
        log.info("serving volume %r on nbd://%s:%d/%s", name, bound_host, bound_port, name)
        if ready is not None:
            ready(bound_host, bound_port)
        await stop.wait()
        log.info("stopping the NBD server of volume %r", tracker.volume_name)
    finally:
        await server.close()


def serve_nbd(
    tracker: WriteTracker,
    image_path: Path,
    host: str,
    port: int,
    *,
    ready: ReadyCallback | None = None,
) -> None:
    """Serve the image over NBD until SIGINT or SIGTERM (call from the main thread)."""
    asyncio.run(_serve_until_signalled(tracker, image_path, host, port, ready))


async def _serve_until_signalled(
    tracker: WriteTracker, image_path: Path, host: str, port: int, ready: ReadyCallback | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await run_nbd(tracker, image_path, host, port, stop=stop, ready=ready)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
