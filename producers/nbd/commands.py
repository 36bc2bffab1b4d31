"""Transmission commands: validate, apply to the image, publish through the tracker, then reply.

The order for every write-type command is fixed by the tracker contract:
`intent` (aligned range) -> image -> `submit_*` (aligned; unaligned edges read back from the
image) -> wait for the tracker's confirmation -> (FUA: fsync) -> success reply. Blocking work runs
in the thread pool; the event loop only awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TypeVar

from tidemark.core.blocks import Extent, align_out, is_aligned
from tidemark.producers.tracker_api import WriteTracker

from . import protocol as p
from .concurrency import RangeLock
from .image import RawImage

log = logging.getLogger(__name__)
T = TypeVar("T")

_WRITE_TYPES = (p.CMD_WRITE, p.CMD_TRIM, p.CMD_WRITE_ZEROES)
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


def check(request: Request, export_size: int) -> int:
    """The NBD error a request deserves before any work is done (0 = acceptable)."""
    allowed = _ALLOWED_FLAGS.get(request.type)
    if allowed is None or request.flags & ~allowed:
        return p.EINVAL
    if request.type in (p.CMD_READ, p.CMD_WRITE) and request.length > p.MAX_PAYLOAD:
        return p.EINVAL
    if request.offset + request.length > export_size:
        return p.ENOSPC if request.type in _WRITE_TYPES else p.EINVAL
    return 0


class CommandHandler:
    """Executes checked requests against one image and one tracker; shared by all connections."""

    def __init__(self, tracker: WriteTracker, image: RawImage, executor: Executor) -> None:
        self._tracker = tracker
        self._image = image
        self._executor = executor
        self._block = tracker.block_size
        self._ranges = RangeLock()

    async def execute(self, request: Request, payload: bytes | None) -> Outcome:
        """Never raises for I/O or tracker failures: they become EIO replies (and a log line)."""
        error = check(request, self._image.size)
        if error:
            return Outcome(error)
        try:
            return await self._dispatch(request, payload)
        except Exception:
            log.exception(
                "volume %r: NBD command %d at offset %d length %d failed",
                self._tracker.volume_name, request.type, request.offset, request.length,
            )
            return Outcome(p.EIO)

    async def _dispatch(self, request: Request, payload: bytes | None) -> Outcome:
        if request.type == p.CMD_READ:
            if request.length == 0:
                return Outcome(0, b"")
            return Outcome(0, await self._run(self._image.read, request.offset, request.length))
        if request.type == p.CMD_FLUSH:
            await self._flush()
            return Outcome(0)
        if request.length == 0:
            return Outcome(0)
        if request.type == p.CMD_WRITE:
            assert payload is not None and len(payload) == request.length
            apply = self._write_step(request.offset, payload)
        elif request.type == p.CMD_TRIM:
            apply = self._zero_step(request.offset, request.length, trim=True, may_punch=True)
        else:
            may_punch = not request.flags & p.CMD_FLAG_NO_HOLE
            apply = self._zero_step(request.offset, request.length, trim=False, may_punch=may_punch)
        span = align_out(request.offset, request.length, self._block)
        async with self._ranges.hold(span):
            futures = await self._run(apply)
        await asyncio.gather(*(asyncio.wrap_future(future) for future in futures))
        if request.flags & p.CMD_FLAG_FUA:
            await self._run(self._image.sync)
        return Outcome(0)

    async def _flush(self) -> None:
        """Image durable, every submitted event confirmed, then a flush-consistent Marker."""
        await self._run(self._image.sync)
        await self._run(self._tracker.flush)
        marker = await self._run(self._tracker.submit_marker, "FLUSH")
        await asyncio.wrap_future(marker)

    def _write_step(self, offset: int, data: bytes) -> Callable[[], list[Future[None]]]:
        def step() -> list[Future[None]]:
            span = align_out(offset, len(data), self._block)
            self._tracker.intent(span.offset, span.length)
            self._image.write(offset, data)
            if is_aligned(offset, len(data), self._block):
                return [self._tracker.submit_write(offset, data)]
            return [self._submit_readback(span)]

        return step

    def _zero_step(
        self, offset: int, length: int, *, trim: bool, may_punch: bool
    ) -> Callable[[], list[Future[None]]]:
        def step() -> list[Future[None]]:
            span = align_out(offset, length, self._block)
            self._tracker.intent(span.offset, span.length)
            if trim:
                self._image.trim(offset, length)
            else:
                self._image.write_zeroes(offset, length, may_punch=may_punch)
            inner_start = span.offset if offset == span.offset else span.offset + self._block
            inner_end = span.end if offset + length == span.end else span.end - self._block
            if inner_start >= inner_end:
                return [self._submit_readback(span)]
            futures = []
            if inner_start > span.offset:
                futures.append(self._submit_readback(Extent(span.offset, inner_start - span.offset)))
            submit = self._tracker.submit_trim if trim else self._tracker.submit_zero
            futures.append(submit(inner_start, inner_end - inner_start))
            if inner_end < span.end:
                futures.append(self._submit_readback(Extent(inner_end, span.end - inner_end)))
            return futures

        return step

    def _submit_readback(self, span: Extent) -> Future[None]:
        """Publish the image's current content of an aligned range (widened unaligned writes)."""
        return self._tracker.submit_write(span.offset, self._image.read(span.offset, span.length))

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
