"""One client connection as an asyncio.BufferedProtocol: handshake, then pipelined requests.

Transmission costs per request no more than the work itself: `data_received` parses every
complete request in the buffer; whatever `Dispatcher.immediate` can answer at once (checks,
defaults, the export's inline fast path) is answered without a task, and all those replies go
out in one write at the end of the batch. The rest runs as one task per request and writes its
reply when done (replies may come in any order; clients match them by handle).

Runs of plain aligned WRITEs whose payloads are in the buffer are served in C, one call per run
(`inline_writes.py`), when the export offers it; the C code stops at the first request it does
not serve, which is then parsed here.

Large WRITE payloads (DIRECT_PAYLOAD bytes or more) are received straight into their own
bytearray (`get_buffer` hands the socket the unfilled part), so their bytes are copied once, by
the kernel; smaller requests go through the receive buffer.

Bounded memory: a `ByteBudget` per connection charges every admitted request REQUEST_CHARGE
plus its READ/WRITE length. When the budget is spent, or the transport's send buffer is full,
the connection stops reading (TCP pushes back on the client) and parses nothing more until a
request finishes or the buffer drains. The receive buffer then holds at most one request's
payload (MAX_PAYLOAD) plus one socket read.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import cast

from tidemark.core.exceptions import NbdProtocolError

from . import protocol as p
from . import replies
from .buffers import PayloadPool
from .concurrency import ByteBudget
from .dispatch import Dispatcher, Outcome, Request
from .handshake import ExportInfo, Session, negotiate
from .inline_writes import MAX_RUN, serve_writes
from .limits import ServerOptions, SharedBudget

log = logging.getLogger(__name__)

# Bytes of payload and read buffers one connection may hold in flight, and the fixed charge per
# request (so even zero-length requests cannot pile up without bound).
IN_FLIGHT_BYTES = 2 * p.MAX_PAYLOAD
REQUEST_CHARGE = 4096
# Handshake bytes buffered ahead of the option being answered before reading pauses.
HANDSHAKE_BUFFER = 4 * p.MAX_OPTION_DATA
RECEIVE_CHUNK = 256 * 1024  # the most one socket read fills when no payload is being received
DIRECT_PAYLOAD = 64 * 1024  # WRITE payloads at least this large are received into their own buffer
_PLAIN_WRITE = b"\x00\x00\x00\x01"  # a request's flags (none) and type (WRITE): a run of inline writes may start


class _Inbox:
    """The handshake's reader: bytes fed by `data_received`, read with `readexactly`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, drained: Callable[[], None]) -> None:
        self._loop = loop
        self._drained = drained
        self.data = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes | memoryview) -> None:
        self.data += data
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    async def readexactly(self, n: int) -> bytes:
        while len(self.data) < n:
            if self._eof:
                partial = bytes(self.data)
                self.data.clear()
                raise asyncio.IncompleteReadError(partial, n)
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = bytes(self.data[:n])
        del self.data[:n]
        if len(self.data) < HANDSHAKE_BUFFER:
            self._drained()
        return chunk

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Connection(asyncio.BufferedProtocol):
    """Serves one client; `closed` is done once its transport is gone and every request finished."""

    def __init__(
        self,
        export: ExportInfo,
        dispatcher: Dispatcher,
        options: ServerOptions,
        shared: SharedBudget,
        tls: ssl.SSLContext | None = None,
        pool: PayloadPool | None = None,
    ) -> None:
        self._export = export
        self._dispatcher = dispatcher
        self._options = options
        self._shared = shared
        self._tls = tls
        self._pool = pool or PayloadPool()
        self._loop = asyncio.get_running_loop()
        self._last_heard = self._loop.time()
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._quiet_period = 0.0
        self._transport: asyncio.Transport | None = None
        self._inbox = _Inbox(self._loop, self._inbox_drained)
        self._handshake: asyncio.Task[None] | None = None
        self._session: Session | None = None
        self._buffer = bytearray()
        self._scratch = bytearray(RECEIVE_CHUNK)
        self._payload: bytearray | None = None  # a large WRITE payload being received in place
        self._payload_filled = 0
        self._budget = ByteBudget(IN_FLIGHT_BYTES)
        self._pending: tuple[Request, int] | None = None  # an admitted WRITE waiting for its payload
        self._discard = 0  # bytes of a refused payload still to skip
        self._discarded_reply: list[bytes] = []  # its EINVAL reply, sent once the payload is skipped
        self._in_flight: set[asyncio.Task[None]] = set()
        self._over_budget = False
        self._send_full = False
        self._handshake_full = False
        self._closing = False
        self._lost = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.peer = "?"

    # --- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.peer = _peer_name(transport)
        self._handshake = self._loop.create_task(self._negotiate())

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._payload is not None:
            return memoryview(self._payload)[self._payload_filled :]
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> None:
        self._last_heard = self._loop.time()
        if self._payload is not None:
            self._payload_filled += nbytes
            if self._payload_filled == len(self._payload):
                self._payload_complete()
            return
        if self._closing:
            return
        received = memoryview(self._scratch)[:nbytes]
        if self._session is None:
            self._inbox.feed(received)
            if len(self._inbox.data) >= HANDSHAKE_BUFFER:
                self._handshake_full = True
                self._update_reading()
            return
        self._buffer += received
        self._process()

    def eof_received(self) -> bool:
        if self._session is None:
            self._inbox.feed_eof()
        elif not self._closing:
            if self._buffer or self._pending or self._discard or self._payload is not None:
                log.warning(
                    "NBD client %s vanished mid-request (%d bytes of it received)",
                    self.peer,
                    len(self._buffer),
                )
            else:
                log.info("NBD client %s disconnected without NBD_CMD_DISC", self.peer)
            self._finish()
        return True  # keep the transport: replies of requests in flight still go out

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._closing = True
        self._inbox.feed_eof()
        # Drop the buffers now: the transport and this protocol refer to each other, and a cycle
        # holding a 32 MiB half-received payload would wait for the garbage collector.
        if self._pending is not None:
            self._release(self._pending[1])
        self._payload, self._pending, self._buffer, self._scratch = None, None, bytearray(), bytearray()
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
        if exc is not None and self._session is not None:
            # The text only: the exception's traceback holds the socket read's buffer (a payload).
            log.warning("NBD client %s dropped the connection: %s", self.peer, str(exc))
        self._wake_drain()
        self._loop.create_task(self._settle())

    def pause_writing(self) -> None:
        self._send_full = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._send_full = False
        self._wake_drain()
        self._update_reading()
        self._process()

    # --- the handshake's writer ----------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._lost:
            self._transport.write(data)

    async def drain(self) -> None:
        if self._lost:
            raise ConnectionResetError(f"NBD client {self.peer} went away during the handshake")
        if self._send_full:
            self._drain_waiter = self._loop.create_future()
            await self._drain_waiter

    async def start_tls(self) -> None:
        assert self._tls is not None and self._transport is not None
        upgraded = await self._loop.start_tls(
            self._transport, self, self._tls, server_side=True, ssl_handshake_timeout=self._options.handshake_timeout
        )
        if upgraded is None:
            raise ConnectionResetError(f"NBD client {self.peer} went away during the TLS handshake")
        self._transport = upgraded

    # --- shutdown ------------------------------------------------------------------------------
    def abort(self) -> None:
        """Cut the connection now, replies not yet taken by the client included."""
        if self._transport is not None and not self._lost:
            self._transport.abort()

    def shutdown(self) -> None:
        """Stop reading; requests in flight finish (their writes are published either way), then close."""
        if self._handshake is not None and not self._handshake.done():
            self._handshake.cancel()
        log.info("closing NBD connection from %s: server shutting down", self.peer)
        self._finish()

    # --- internals -----------------------------------------------------------------------------
    async def _negotiate(self) -> None:
        try:
            session = await asyncio.wait_for(
                negotiate(self._inbox, self, self._export, self._options.tls.mode), self._options.handshake_timeout
            )
        except asyncio.CancelledError:
            return
        except TimeoutError:
            log.warning(
                "closing NBD connection from %s: no handshake within %.0f s",
                self.peer, self._options.handshake_timeout,
            )  # fmt: skip
            session = None
        except asyncio.IncompleteReadError as exc:
            log.warning(
                "NBD client %s vanished mid-handshake (%d of %d bytes)",
                self.peer,
                len(exc.partial),
                exc.expected,
            )
            session = None
        except ConnectionError as exc:
            log.warning("NBD client %s dropped the connection: %s", self.peer, str(exc))
            session = None
        except NbdProtocolError as exc:
            log.warning("closing NBD connection from %s: %s", self.peer, str(exc))
            session = None
        if session is None:
            self._finish()
            return
        log.info(
            "NBD client %s entered transmission on export %r",
            self.peer,
            self._export.name,
        )
        self._session = session
        self._buffer = self._inbox.data
        self._handshake_full = False
        timeouts = [t for t in (self._options.idle_timeout, self._options.request_timeout) if t is not None]
        if timeouts:
            self._quiet_period = max(min(timeouts) / 4, 0.05)
            self._quiet_timer = self._loop.call_later(self._quiet_period, self._check_quiet)
        self._update_reading()
        self._process()

    def _process(self) -> None:
        """Parse and start every complete request the budget admits; send the immediate replies."""
        session = self._session
        if session is None:
            return
        buffer = self._buffer
        out: list[bytes] = []
        at = 0
        while not self._closing:
            available = len(buffer) - at
            if self._discard:
                skipped = min(self._discard, available)
                at += skipped
                self._discard -= skipped
                if self._discard:
                    break
                out += self._discarded_reply
                continue
            if self._pending is not None:
                request, charge = self._pending
                if available < request.length:
                    break
                with memoryview(buffer) as view:
                    payload = bytes(view[at : at + request.length])
                at += request.length
                self._pending = None
                self._start(request, payload, charge, session, out)
                continue
            if self._over_budget or self._send_full or available < p.REQUEST.size:
                break
            if buffer[at + 4 : at + 8] == _PLAIN_WRITE:
                served = self._serve_inline_writes(buffer, at, out)
                if served != at:
                    at = served
                    continue
            magic, flags, kind, handle, offset, length = p.REQUEST.packer.unpack_from(buffer, at)
            if magic != p.REQUEST_MAGIC:
                log.warning("closing NBD connection from %s: request has magic %#x, expected %#x",
                            self.peer, magic, p.REQUEST_MAGIC)  # fmt: skip
                self._finish()
                break
            if kind == p.CMD_DISC:
                log.info("NBD client %s disconnected", self.peer)
                self._finish()
                break
            request = Request(flags, kind, handle, offset, length)
            if kind == p.CMD_WRITE and length > p.MAX_PAYLOAD:
                at += p.REQUEST.size
                self._discard = length
                self._discarded_reply = replies.encode(request, Outcome(p.EINVAL), session.structured)
                continue
            charge = REQUEST_CHARGE + (min(length, p.MAX_PAYLOAD) if kind in (p.CMD_READ, p.CMD_WRITE) else 0)
            if not self._budget.try_acquire(charge):
                self._over_budget = True
                self._update_reading()
                break
            if not self._shared.try_acquire(charge, self._wake_later):
                self._budget.release(charge)
                self._over_budget = True
                self._update_reading()
                break
            at += p.REQUEST.size
            if kind == p.CMD_WRITE:
                self._pending = (request, charge)
                if length >= DIRECT_PAYLOAD and len(buffer) - at < length:
                    at = self._receive_in_place(buffer, at, length)
                    break
            else:
                self._start(request, None, charge, session, out)
        del buffer[:at]
        if out:
            self.write(b"".join(out))

    def _serve_inline_writes(self, buffer: bytearray, at: int, out: list[bytes]) -> int:
        """Serve the run of plain aligned WRITEs at `at` in C (`inline_writes.py`); where it stopped."""
        hooks = self._dispatcher.inline_write_hooks()
        if hooks is None or serve_writes is None:
            return at
        end, served = serve_writes(
            buffer,
            at,
            hooks.fd,
            hooks.block_size,
            self._export.size,
            hooks.max_length,
            MAX_RUN,
            hooks.intent,
            hooks.submit,
        )
        if served:
            out.append(served)
        return end

    def _receive_in_place(self, buffer: bytearray, at: int, length: int) -> int:
        """Move the payload's first bytes into its own buffer; the socket fills the rest (`get_buffer`)."""
        payload = self._pool.take(length)
        have = len(buffer) - at
        payload[:have] = memoryview(buffer)[at:]
        self._payload, self._payload_filled = payload, have
        return len(buffer)

    def _payload_complete(self) -> None:
        assert self._pending is not None and self._payload is not None and self._session is not None
        (request, charge), payload = self._pending, self._payload
        self._pending, self._payload = None, None
        out: list[bytes] = []
        if self._start(request, cast(bytes, payload), charge, self._session, out):
            self._pool.give_back(payload)
        if out:
            self.write(b"".join(out))
        self._process()

    def _start(
        self,
        request: Request,
        payload: bytes | None,
        charge: int,
        session: Session,
        out: list[bytes],
    ) -> bool:
        """Answer at once (True) or start a task (False)."""
        outcome = self._dispatcher.immediate(request, payload, session.block_status)
        if outcome is not None:
            self._release(charge)
            out += replies.encode(request, outcome, session.structured)
            return True
        task = self._loop.create_task(self._serve(request, payload, charge, session))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return False

    async def _serve(self, request: Request, payload: bytes | None, charge: int, session: Session) -> None:
        try:
            outcome = await self._dispatcher.execute(request, payload)
            self.write(b"".join(replies.encode(request, outcome, session.structured)))
        finally:
            self._release(charge)
            self._shared_released()
        if isinstance(payload, bytearray):
            self._pool.give_back(payload)

    def _release(self, charge: int) -> None:
        self._budget.release(charge)
        self._shared.release(charge)

    def _wake_later(self) -> None:
        """Called by the shared budget, maybe from inside another `_process`: never parse re-entrantly."""
        self._loop.call_soon(self._shared_released)

    def _shared_released(self) -> None:
        """Bytes came back (here or on another connection): read and parse again if they stopped us."""
        if self._over_budget and not self._closing:
            self._over_budget = False
            self._update_reading()
            self._process()

    def _check_quiet(self) -> None:
        """Close a connection whose request stalled half-sent, or that is idle past the idle timeout."""
        if self._closing:
            return
        options = self._options
        quiet = self._loop.time() - self._last_heard
        waiting_for_client = not (self._over_budget or self._send_full)  # time we paused reading is not theirs
        partial = self._payload is not None or self._pending is not None or bool(self._buffer)
        if partial and waiting_for_client and options.request_timeout is not None and quiet >= options.request_timeout:
            log.warning("closing NBD connection from %s: a request stalled half-sent for %.0f s", self.peer, quiet)
            self._finish()
        elif not partial and not self._in_flight and options.idle_timeout is not None and quiet >= options.idle_timeout:
            log.warning("closing NBD connection from %s: nothing received for %.0f s", self.peer, quiet)
            self._finish()
        else:
            self._quiet_timer = self._loop.call_later(self._quiet_period, self._check_quiet)

    def _finish(self) -> None:
        """Read nothing more; close once the requests in flight have replied."""
        if self._closing:
            return
        self._closing = True
        self._update_reading()
        self._loop.create_task(self._settle())

    async def _settle(self) -> None:
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        if self._lost and not self.closed.done():
            self.closed.set_result(None)

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or self._lost:
            return
        paused = self._closing or self._over_budget or self._send_full or self._handshake_full
        if paused and transport.is_reading():
            transport.pause_reading()
        elif not paused and not transport.is_reading():
            self._last_heard = self._loop.time()  # the pause was ours, not the client's silence
            transport.resume_reading()

    def _inbox_drained(self) -> None:
        if self._handshake_full:
            self._handshake_full = False
            self._update_reading()

    def _wake_drain(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)


def _peer_name(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
