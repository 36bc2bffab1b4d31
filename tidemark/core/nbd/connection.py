"""One client connection: handshake, then pipelined requests answered as they complete."""

from __future__ import annotations

import asyncio
import logging

from tidemark.core.exceptions import NbdProtocolError

from . import protocol as p
from .concurrency import ByteBudget
from .dispatch import Dispatcher, Outcome, Request
from .handshake import ExportInfo, negotiate

log = logging.getLogger(__name__)

# Bytes of payload and read buffers one connection may hold in flight, and the fixed charge per
# request (so even zero-length requests cannot pile up without bound).
IN_FLIGHT_BYTES = 2 * p.MAX_PAYLOAD
REQUEST_CHARGE = 4096
_DISCARD_CHUNK = 1024 * 1024


class Connection:
    """Reads requests in order, runs each as its own task, writes replies under a lock."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        export: ExportInfo,
        handler: Dispatcher,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._export = export
        self._handler = handler
        self._send_lock = asyncio.Lock()
        self._budget = ByteBudget(IN_FLIGHT_BYTES)
        self._in_flight: set[asyncio.Task[None]] = set()
        self.peer = _peer_name(writer)

    async def run(self) -> None:
        """Serve until the client disconnects; never raises (one bad client must not stop others)."""
        try:
            if await negotiate(self._reader, self._writer, self._export):
                log.info("NBD client %s entered transmission on export %r", self.peer, self._export.name)
                await self._transmission()
        except asyncio.CancelledError:
            log.info("closing NBD connection from %s: server shutting down", self.peer)
        except asyncio.IncompleteReadError as exc:
            log.warning(
                "NBD client %s vanished mid-message (%d of %d bytes)", self.peer, len(exc.partial), exc.expected
            )
        except ConnectionError as exc:
            log.warning("NBD client %s dropped the connection: %s", self.peer, exc)
        except NbdProtocolError as exc:
            log.warning("closing NBD connection from %s: %s", self.peer, exc)
        except Exception:
            log.exception("closing NBD connection from %s after an unexpected error", self.peer)
        finally:
            await self._close()

    async def _transmission(self) -> None:
        while True:
            header = await self._reader.readexactly(p.REQUEST.size)
            magic, flags, kind, handle, offset, length = p.REQUEST.unpack(header)
            if magic != p.REQUEST_MAGIC:
                raise NbdProtocolError(f"request has magic {magic:#x}, expected {p.REQUEST_MAGIC:#x}")
            if kind == p.CMD_DISC:
                log.info("NBD client %s disconnected", self.peer)
                return
            request = Request(flags, kind, handle, offset, length)
            if kind == p.CMD_WRITE and length > p.MAX_PAYLOAD:
                await self._discard(length)
                await self._send(handle, Outcome(p.EINVAL))
                continue
            charge = REQUEST_CHARGE + (min(length, p.MAX_PAYLOAD) if kind in (p.CMD_READ, p.CMD_WRITE) else 0)
            await self._budget.acquire(charge)
            try:
                payload = await self._reader.readexactly(length) if kind == p.CMD_WRITE else None
            except BaseException:
                await self._budget.release(charge)
                raise
            task = asyncio.create_task(self._serve(request, payload, charge))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _serve(self, request: Request, payload: bytes | None, charge: int) -> None:
        try:
            outcome = await self._handler.execute(request, payload)
            await self._send(request.handle, outcome)
        except Exception as exc:
            log.warning("cannot reply to NBD client %s (handle %#x): %s", self.peer, request.handle, exc)
        finally:
            await self._budget.release(charge)

    async def _send(self, handle: int, outcome: Outcome) -> None:
        async with self._send_lock:
            self._writer.write(p.simple_reply(handle, outcome.error))
            if outcome.error == 0 and outcome.data:
                self._writer.write(outcome.data)
            await self._writer.drain()

    async def _discard(self, length: int) -> None:
        """Skip a payload we refuse, in small chunks (never a buffer of the client's size)."""
        while length > 0:
            chunk = await self._reader.readexactly(min(length, _DISCARD_CHUNK))
            length -= len(chunk)

    async def _close(self) -> None:
        """Let accepted requests finish (their writes are published either way), then close."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
