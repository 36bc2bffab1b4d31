"""An asyncio NBD server of one export, named after it, on one listening address.

`run_export` serves until an event is set (tests run it in a thread, on `new_event_loop`);
`serve_export` is the blocking entry point that stops on SIGINT/SIGTERM. Neither knows what the
export is backed by.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

import uvloop

from tidemark.core.exceptions import NbdServerError

from . import protocol as p
from .connection import Connection
from .dispatch import Dispatcher
from .export import Export
from .handshake import ExportInfo

log = logging.getLogger(__name__)

ReadyCallback = Callable[[str, int], None]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop NBD servers run on: uvloop (libuv), which measured faster than asyncio's selector loop."""
    return uvloop.new_event_loop()


def export_info(export: Export) -> ExportInfo:
    flags = p.TRANSMISSION_FLAGS | (p.TFLAG_READ_ONLY if export.read_only else 0)
    return ExportInfo(export.name, export.size, export.block_size, flags)


class NbdServer:
    """Listens on host:port and serves `export`; `close` also closes the export."""

    def __init__(self, export: Export) -> None:
        self._export = export
        self._dispatcher = Dispatcher(export)
        self._info = export_info(export)
        self._connections: set[Connection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Start listening; returns the bound address (port 0 picks a free port)."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._accept, host, port)
        except OSError as exc:
            raise NbdServerError(
                f"cannot listen on {host}:{port} for NBD clients: {exc.strerror}; choose another --listen"
            ) from exc
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    def _accept(self) -> Connection:
        connection = Connection(self._info, self._dispatcher)
        self._connections.add(connection)
        connection.closed.add_done_callback(lambda _: self._connections.discard(connection))
        return connection

    async def close(self) -> None:
        """Stop accepting, finish accepted requests, close clients, then close the export."""
        if self._server is not None:
            self._server.close()
        connections = list(self._connections)
        for connection in connections:
            connection.shutdown()
        if connections:
            await asyncio.gather(
                *(connection.closed for connection in connections),
                return_exceptions=True,
            )
        if self._server is not None:
            await self._server.wait_closed()
        await self._export.close()


async def run_export(
    export: Export,
    host: str,
    port: int,
    *,
    stop: asyncio.Event,
    ready: ReadyCallback | None = None,
) -> None:
    """Serve until `stop` is set, then shut down cleanly (the export is closed either way)."""
    server = NbdServer(export)
    try:
        bound_host, bound_port = await server.start(host, port)
        mode = "read-only" if export.read_only else "read-write"
        log.info(
            "serving %r (%s) on nbd://%s:%d/%s",
            export.name,
            mode,
            bound_host,
            bound_port,
            export.name,
        )
        if ready is not None:
            ready(bound_host, bound_port)
        await stop.wait()
        log.info("stopping the NBD server of %r", export.name)
    finally:
        await server.close()


def serve_export(export: Export, host: str, port: int, *, ready: ReadyCallback | None = None) -> None:
    """Serve until SIGINT or SIGTERM (call from the main thread)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve_until_signalled(export, host, port, ready))


async def _serve_until_signalled(export: Export, host: str, port: int, ready: ReadyCallback | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await run_export(export, host, port, stop=stop, ready=ready)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
