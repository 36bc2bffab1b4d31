"""An asyncio NBD server of one export, named after it, on one listening address.

`run_export` serves until an event is set (tests run it in a thread, on `new_event_loop`);
`serve_export` is the blocking entry point that stops on SIGINT/SIGTERM. Neither knows what the
export is backed by.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from collections.abc import Callable

import uvloop

from tidemark.core.exceptions import NbdServerError

from . import protocol as p
from .buffers import PayloadPool
from .connection import Connection
from .dispatch import Dispatcher
from .export import ConnectExport, Export
from .handshake import ExportInfo
from .limits import ServerOptions, SharedBudget

log = logging.getLogger(__name__)

ReadyCallback = Callable[[str, int], None]
StartedCallback = Callable[[Callable[[], None]], None]
"""Called with a thread-safe `stop()` once serving starts (`serve_export`)."""
UNIX_PREFIX = "unix:"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop NBD servers run on: uvloop (libuv), which measured faster than asyncio's selector loop."""
    return uvloop.new_event_loop()


def export_info(export: Export) -> ExportInfo:
    flags = p.TRANSMISSION_FLAGS | (p.TFLAG_READ_ONLY if export.read_only else 0)
    return ExportInfo(export.name, export.size, export.block_size, flags)


class _Refused(asyncio.Protocol):
    """A client past the connection limit: closed at once, before the greeting."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class NbdServer:
    """Listens on host:port (or `unix:PATH`, port ignored) and serves `export`; `close` also closes the export."""

    def __init__(self, export: Export, options: ServerOptions | None = None) -> None:
        self._export = export
        self._options = options or ServerOptions()
        self._dispatcher = Dispatcher(export)
        self._info = export_info(export)
        self._shared = SharedBudget(self._options.max_in_flight_bytes)
        self._tls = self._options.tls.context()
        self._pool = PayloadPool()
        self._connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._on_connect = export.client_connected if isinstance(export, ConnectExport) else None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Start listening; the bound address (port 0 picks a free port; ("unix:PATH", 0) for a socket file)."""
        loop = asyncio.get_running_loop()
        try:
            if host.startswith(UNIX_PREFIX):
                self._server = await loop.create_unix_server(self._accept, host.removeprefix(UNIX_PREFIX))
                return host, 0
            self._server = await loop.create_server(self._accept, host, port)
        except OSError as exc:
            raise NbdServerError(
                f"cannot listen on {host}:{port} for NBD clients: {exc.strerror}; choose another --listen"
            ) from exc
        if self._tls is None and not _is_loopback(host):
            log.warning(
                "NBD server listening on %s:%d beyond loopback without TLS: anyone who reaches this address "
                "can read and write %r; listen on 127.0.0.1 or unix:PATH unless the network is trusted",
                host, port, self._export.name,
            )  # fmt: skip
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    def _accept(self) -> asyncio.BaseProtocol:
        if len(self._connections) >= self._options.max_connections:
            log.warning(
                "refusing an NBD client of %r: %d connections open, the limit",
                self._export.name, len(self._connections),
            )  # fmt: skip
            return _Refused()
        connection = Connection(self._info, self._dispatcher, self._options, self._shared, self._tls, self._pool)
        self._connections.add(connection)
        if self._on_connect is not None:
            self._on_connect()
        connection.closed.add_done_callback(lambda _: self._connections.discard(connection))
        return connection

    async def close(self) -> None:
        """Stop accepting, finish accepted requests, close clients, then close the export.

        Clients get `shutdown_grace` seconds to take their last replies; then their connections
        are cut (requests already accepted still finish; their writes are published either way).
        """
        if self._server is not None:
            self._server.close()
        connections = list(self._connections)
        for connection in connections:
            connection.shutdown()
        if connections:
            closing = [asyncio.ensure_future(connection.closed) for connection in connections]
            _, late = await asyncio.wait(closing, timeout=self._options.shutdown_grace)
            if late:
                log.warning("cutting %d NBD connections that did not close within the grace period", len(late))
                for connection in connections:
                    connection.abort()
            await asyncio.gather(*closing, return_exceptions=True)
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
    options: ServerOptions | None = None,
) -> None:
    """Serve until `stop` is set, then shut down cleanly (the export is closed either way)."""
    server = NbdServer(export, options)
    try:
        bound_host, bound_port = await server.start(host, port)
        mode = "read-only" if export.read_only else "read-write"
        where = (
            f"nbd+unix:///{export.name}?socket={bound_host.removeprefix(UNIX_PREFIX)}"
            if bound_host.startswith(UNIX_PREFIX)
            else f"nbd://{bound_host}:{bound_port}/{export.name}"
        )
        log.info("serving %r (%s) on %s", export.name, mode, where)
        if ready is not None:
            ready(bound_host, bound_port)
        await stop.wait()
        log.info("stopping the NBD server of %r", export.name)
    finally:
        await server.close()


def serve_export(
    export: Export,
    host: str,
    port: int,
    *,
    ready: ReadyCallback | None = None,
    options: ServerOptions | None = None,
    started: StartedCallback | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM (call from the main thread).

    `started(stop)` runs once the signal handlers are in place, before the server listens; `stop()`
    ends the serving like a signal, from any thread (say, a background job that finished)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve_until_signalled(export, host, port, ready, options, started))


async def _serve_until_signalled(
    export: Export,
    host: str,
    port: int,
    ready: ReadyCallback | None,
    options: ServerOptions | None,
    started: StartedCallback | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        if started is not None:

            def stop_serving() -> None:
                loop.call_soon_threadsafe(stop.set)

            started(stop_serving)
        await run_export(export, host, port, stop=stop, ready=ready, options=options)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
