"""Transmission requests: checked once here, then handed to the export backend.

The checks (unknown command or flags, oversized payload, range past the end, write to a read-only
export) answer with the protocol's error values before any work is done. Backend failures become
EIO replies and a log line; they never close the connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from . import protocol as p
from .export import Export

log = logging.getLogger(__name__)

WRITE_TYPES = (p.CMD_WRITE, p.CMD_TRIM, p.CMD_WRITE_ZEROES)
_ALLOWED_FLAGS = {
    p.CMD_READ: 0,
    p.CMD_WRITE: p.CMD_FLAG_FUA,
    p.CMD_FLUSH: 0,
    p.CMD_TRIM: p.CMD_FLAG_FUA,
    p.CMD_WRITE_ZEROES: p.CMD_FLAG_FUA | p.CMD_FLAG_NO_HOLE,
}


@dataclass(frozen=True, slots=True)
class Request:
    flags: int
    type: int
    handle: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """The reply to send: an NBD error value (0 = success) and, for a successful READ, data."""

    error: int
    data: bytes | None = None


def check(request: Request, export_size: int, read_only: bool = False) -> int:
    """The NBD error a request deserves before any work is done (0 = acceptable)."""
    allowed = _ALLOWED_FLAGS.get(request.type)
    if allowed is None or request.flags & ~allowed:
        return p.EINVAL
    if read_only and request.type in WRITE_TYPES:
        return p.EPERM
    if request.type in (p.CMD_READ, p.CMD_WRITE) and request.length > p.MAX_PAYLOAD:
        return p.EINVAL
    if request.offset + request.length > export_size:
        return p.ENOSPC if request.type in WRITE_TYPES else p.EINVAL
    return 0


class Dispatcher:
    """Executes checked requests against one export; shared by all connections."""

    def __init__(self, export: Export) -> None:
        self.export = export

    async def execute(self, request: Request, payload: bytes | None) -> Outcome:
        """Never raises for backend failures: they become EIO replies (and a log line)."""
        error = check(request, self.export.size, self.export.read_only)
        if error:
            return Outcome(error)
        try:
            return await self._dispatch(request, payload)
        except Exception:
            log.exception(
                "export %r: NBD command %d at offset %d length %d failed",
                self.export.name, request.type, request.offset, request.length,
            )  # fmt: skip
            return Outcome(p.EIO)

    async def _dispatch(self, request: Request, payload: bytes | None) -> Outcome:
        export = self.export
        fua = bool(request.flags & p.CMD_FLAG_FUA)
        if request.type == p.CMD_READ:
            if request.length == 0:
                return Outcome(0, b"")
            return Outcome(0, await export.read(request.offset, request.length))
        if request.type == p.CMD_FLUSH:
            await export.flush()
            return Outcome(0)
        if request.length == 0:
            return Outcome(0)
        if request.type == p.CMD_WRITE:
            assert payload is not None and len(payload) == request.length
            await export.write(request.offset, payload, fua)
        elif request.type == p.CMD_TRIM:
            await export.trim(request.offset, request.length, fua)
        else:
            may_punch = not request.flags & p.CMD_FLAG_NO_HOLE
            await export.zero(request.offset, request.length, fua, may_punch)
        return Outcome(0)
