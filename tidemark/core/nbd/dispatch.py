"""Transmission requests: checked once here, then handed to the export backend.

The checks (unknown command or flags, oversized payload, range past the end, write to a read-only
export, BLOCK_STATUS without a metadata context) answer with the protocol's error values before
any work is done. Backend failures become EIO replies and a log line; they never close the
connection.

Each request is first offered to `Dispatcher.immediate`, which answers at once, on the event
loop thread, whatever needs no waiting: check failures, empty ranges, the defaults of
capabilities an export lacks, and the export's inline fast path (`InlineExport`). Only when it
returns None does the connection run `Dispatcher.execute` as a task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from . import protocol as p
from .export import (
    BlockStatusExport,
    CacheExport,
    Export,
    Extents,
    FastZeroExport,
    InlineExport,
    InlineWriteExport,
)
from .inline_writes import InlineWriteHooks

log = logging.getLogger(__name__)

WRITE_TYPES = (p.CMD_WRITE, p.CMD_TRIM, p.CMD_WRITE_ZEROES)
_ALLOWED_FLAGS = {  # FUA is accepted on every command (the protocol says so once SEND_FUA is advertised)
    p.CMD_READ: p.CMD_FLAG_FUA,
    p.CMD_WRITE: p.CMD_FLAG_FUA,
    p.CMD_FLUSH: p.CMD_FLAG_FUA,
    p.CMD_TRIM: p.CMD_FLAG_FUA,
    p.CMD_CACHE: p.CMD_FLAG_FUA,
    p.CMD_WRITE_ZEROES: p.CMD_FLAG_FUA | p.CMD_FLAG_NO_HOLE | p.CMD_FLAG_FAST_ZERO,
    p.CMD_BLOCK_STATUS: p.CMD_FLAG_FUA | p.CMD_FLAG_REQ_ONE,
}
_NEEDS_LENGTH = (p.CMD_BLOCK_STATUS,)
_FAILED = "export %r: NBD command %d at offset %d length %d failed"


@dataclass(frozen=True, slots=True)
class Request:
    flags: int
    type: int
    handle: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """The reply to send: an NBD error value (0 = success), READ data or BLOCK_STATUS extents."""

    error: int
    data: bytes | None = None
    extents: Extents | None = None


OK = Outcome(0)


def check(
    request: Request,
    export_size: int,
    read_only: bool = False,
    block_status: bool = False,
) -> int:
    """The NBD error a request deserves before any work is done (0 = acceptable).

    `block_status` says whether the client selected a metadata context (BLOCK_STATUS allowed).
    """
    allowed = _ALLOWED_FLAGS.get(request.type)
    if allowed is None or request.flags & ~allowed:
        return p.EINVAL
    if request.type == p.CMD_BLOCK_STATUS and not block_status:
        return p.EINVAL
    if read_only and request.type in WRITE_TYPES:
        return p.EPERM
    if request.type in (p.CMD_READ, p.CMD_WRITE) and request.length > p.MAX_PAYLOAD:
        return p.EINVAL
    if request.type in _NEEDS_LENGTH and request.length == 0:
        return p.EINVAL
    if request.offset + request.length > export_size:
        return p.ENOSPC if request.type in WRITE_TYPES else p.EINVAL
    return 0


def clip_extents(extents: Extents, length: int, one: bool) -> Extents:
    """The export's answer made valid: nonzero lengths, at most `length` in total, one if asked."""
    clipped: list[tuple[int, int]] = []
    left = length
    for extent_length, flags in extents:
        if left == 0:
            break
        take = min(extent_length, left)
        if take <= 0:
            continue
        if clipped and clipped[-1][1] == flags:
            clipped[-1] = (clipped[-1][0] + take, flags)
        else:
            clipped.append((take, flags))
        left -= take
    if not clipped:
        return [(length, 0)]
    return clipped[:1] if one else clipped


class Dispatcher:
    """Executes checked requests against one export; shared by all connections."""

    def __init__(self, export: Export) -> None:
        self.export = export
        self._inline = export if isinstance(export, InlineExport) else None
        self._block_status = export if isinstance(export, BlockStatusExport) else None
        self._cache = export if isinstance(export, CacheExport) else None
        self._fast_zero = export if isinstance(export, FastZeroExport) else None
        self._inline_writes = export if isinstance(export, InlineWriteExport) else None

    def inline_write_hooks(self) -> InlineWriteHooks | None:
        """The export's hooks for a run of plain WRITEs served in C (`inline_writes.py`), if it may run now."""
        return None if self._inline_writes is None else self._inline_writes.inline_write_hooks()

    def immediate(self, request: Request, payload: bytes | None, block_status: bool) -> Outcome | None:
        """The outcome when it needs no waiting, else None (then `execute` it). Never raises."""
        export = self.export
        error = check(request, export.size, export.read_only, block_status)
        if error:
            return Outcome(error)
        kind = request.type
        if request.length == 0 and kind != p.CMD_FLUSH:
            return Outcome(0, b"") if kind == p.CMD_READ else OK
        if kind == p.CMD_BLOCK_STATUS and self._block_status is None:
            return Outcome(0, extents=[(request.length, 0)])
        if kind == p.CMD_CACHE and self._cache is None:
            return OK
        if kind == p.CMD_WRITE_ZEROES and request.flags & p.CMD_FLAG_FAST_ZERO and self._fast_zero is None:
            return Outcome(p.ENOTSUP)
        if self._inline is None or kind not in (p.CMD_READ, p.CMD_WRITE):
            return None
        try:
            if kind == p.CMD_READ:
                data = self._inline.try_read(request.offset, request.length)
                return None if data is None else Outcome(0, data)
            assert payload is not None
            return OK if self._inline.try_write(request.offset, payload, bool(request.flags & p.CMD_FLAG_FUA)) else None
        except Exception:
            log.exception(_FAILED, self.export.name, request.type, request.offset, request.length)
            return Outcome(p.EIO)

    async def execute(self, request: Request, payload: bytes | None) -> Outcome:
        """Run a request `immediate` left over. Backend failures become EIO replies (and a log line)."""
        try:
            return await self._dispatch(request, payload)
        except Exception:
            log.exception(_FAILED, self.export.name, request.type, request.offset, request.length)
            return Outcome(p.EIO)

    async def _dispatch(self, request: Request, payload: bytes | None) -> Outcome:
        export = self.export
        kind, offset, length = request.type, request.offset, request.length
        fua = bool(request.flags & p.CMD_FLAG_FUA)
        if kind == p.CMD_READ:
            return Outcome(0, await export.read(offset, length))
        if kind == p.CMD_WRITE:
            assert payload is not None and len(payload) == length
            await export.write(offset, payload, fua)
        elif kind == p.CMD_FLUSH:
            await export.flush()
        elif kind == p.CMD_TRIM:
            await export.trim(offset, length, fua)
        elif kind == p.CMD_WRITE_ZEROES:
            may_punch = not request.flags & p.CMD_FLAG_NO_HOLE
            if not request.flags & p.CMD_FLAG_FAST_ZERO:
                await export.zero(offset, length, fua, may_punch)
            elif self._fast_zero is None or not await self._fast_zero.zero_fast(offset, length, fua, may_punch):
                return Outcome(p.ENOTSUP)
        elif kind == p.CMD_CACHE:
            assert self._cache is not None
            await self._cache.cache(offset, length)
        else:
            assert kind == p.CMD_BLOCK_STATUS and self._block_status is not None
            extents = await self._block_status.block_status(offset, length)
            return Outcome(
                0,
                extents=clip_extents(extents, length, bool(request.flags & p.CMD_FLAG_REQ_ONE)),
            )
        return OK
