"""The tracking export: every write-type command goes to the image and through the tracker.

The order for every write-type command is fixed by the tracker contract:
`intent` (aligned range) -> image -> `submit_*` (aligned; unaligned edges read back from the
image) -> wait for the tracker's confirmation -> (FUA: fsync) -> success reply.

Plain aligned writes (no FUA, up to 64 KiB) arriving together are served in C, a run at a time
(`inline_write_hooks`), with the same steps as `try_write`, each step once for the whole run
(`WriteTracker.intent_run` and `submit_writes`); the run is shipped on the loop right after
its replies went out (`WriteTracker.ship_queued`). Small writes (up to
`INLINE_MAX_BYTES`) run on the event loop itself: a pwrite to the page cache
and an enqueue cost less than a hop to the thread pool, and with local acknowledgement the
futures are already done, so nothing is awaited. The loop may block once per activity-log region
that enters the log (a durable write of the log, about 2 ms here), then the region is hot. Larger
writes, zeroes, trims, reads, fsyncs and waits for Kafka run in the thread pool. Request checking,
replies and the wire protocol are the shared core's (`tidemark.core.nbd`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from tidemark.core.blocks import Extent, align_out, is_aligned
from tidemark.core.nbd import inline_writes
from tidemark.core.nbd.concurrency import RangeLock
from tidemark.core.nbd.export import DEFAULT_IO_THREADS
from tidemark.core.nbd.inline_writes import InlineWriteHooks
from tidemark.producers.tracker_api import Fenceable, WriteTracker

from ..read_profile import ReadProfile
from ..tracker import TrackerFencedError
from .image import RawImage

log = logging.getLogger(__name__)
T = TypeVar("T")
SHUTDOWN_FLUSH_TIMEOUT = 30.0
INLINE_MAX_BYTES = 64 * 1024


class TrackingExport:
    """Implements `tidemark.core.nbd.export.Export` for one image and one tracker."""

    def __init__(
        self,
        tracker: WriteTracker,
        image: RawImage,
        *,
        io_threads: int = DEFAULT_IO_THREADS,
        profile: ReadProfile | None = None,
        native_writes: bool = True,
    ) -> None:
        """`profile`: records the first blocks read after each client connects (read_profile.py).
        `native_writes`: offer runs of plain writes to the C path (`inline_write_hooks`)."""
        self._tracker = tracker
        self._profile = profile
        self._fence = tracker if isinstance(tracker, Fenceable) else None
        self._image = image
        self._executor = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="nbd-io")
        self._block = tracker.block_size
        self._ranges = RangeLock()
        why_not = _why_python(native_writes, tracker.acknowledges_locally)
        self._hooks = (
            None
            if why_not
            else InlineWriteHooks(
                image.fileno(), self._block, INLINE_MAX_BYTES, self._unfenced_intent_run, self._submit_run
            )
        )
        self._ship_due = False
        log.info("volume %s: plain writes are served %s", tracker.volume_name, why_not or "in C")

    @property
    def name(self) -> str:
        return self._tracker.volume_name

    @property
    def size(self) -> int:
        return self._image.size

    @property
    def block_size(self) -> int:
        return self._block

    @property
    def read_only(self) -> bool:
        """True once the tracker is fenced: the server then answers writes, trims and zeroes with EPERM."""
        return self._fence is not None and self._fence.fenced is not None

    def client_connected(self) -> None:
        if self._profile is not None:
            self._profile.connected()

    async def read(self, offset: int, length: int) -> bytes:
        if self._profile is not None:
            self._profile.record(offset, length)
        return await self._run(self._image.read, offset, length)

    def try_read(self, offset: int, length: int) -> bytes | None:
        """Small reads from the page cache on the event loop (the core's inline fast path)."""
        if length > INLINE_MAX_BYTES:
            return None
        if self._profile is not None:
            self._profile.record(offset, length)
        return self._image.read(offset, length)

    def inline_write_hooks(self) -> InlineWriteHooks | None:
        """Runs of plain writes served in C under `try_write`'s conditions, checked once per run.

        The run happens on the event loop, so no range can be taken during it: no range held
        now means none overlaps any write of the run. The fence (set by the registry watch's
        thread at any time) is checked here and by `intent` before each write reaches the image:
        a run stops at the first write after it, and the Python path answers that one EPERM.
        """
        if self.read_only or not self._ranges.idle:
            return None
        return self._hooks

    def _unfenced_intent_run(self, ranges: list[tuple[int, int]]) -> None:
        """`_unfenced_intent` of a run of writes of the C path, with the fence checked last: the
        run's image writes follow in C with the interpreter lock held, so no fence (set by another
        thread) can come between this check and them."""
        self._tracker.intent_run(ranges)
        reason = self._fence.fenced if self._fence is not None else None
        if reason is not None:
            raise TrackerFencedError(reason)

    def _submit_run(self, writes: list[tuple[int, bytes]]) -> int:
        """The tracker's `submit_writes` of a C run, with its shipping asked for once the loop has
        sent the replies (`call_soon`: after the reading callback that served the run, which sends
        them), so at queue depth 1 the event ships while the client reads its reply."""
        taken = self._tracker.submit_writes(writes)
        if not self._ship_due:
            self._ship_due = True
            asyncio.get_running_loop().call_soon(self._ship_queued)
        return taken

    def _ship_queued(self) -> None:
        self._ship_due = False
        self._tracker.ship_queued()

    def _unfenced_intent(self, offset: int, length: int) -> None:
        """The tracker's `intent`, refused once fenced: every write path checks the fence just before
        the image changes (a fence between the server's check and here would otherwise let a write
        refused by `submit` reach the image)."""
        reason = self._fence.fenced if self._fence is not None else None
        if reason is not None:
            raise TrackerFencedError(reason)
        self._tracker.intent(offset, length)

    def try_write(self, offset: int, data: bytes, fua: bool) -> bool:
        """The whole write on the event loop, with no task and no await, when that is safe.

        Only with local acknowledgement (the tracker's futures are done on return), without FUA
        (an fsync must not block the loop), for small writes, and when no write in the thread
        pool holds an overlapping range: the step then runs without yielding, so no other write
        can come between its image write and its submit. Otherwise False: the core awaits
        `write`, which takes the range lock.
        """
        if fua or len(data) > INLINE_MAX_BYTES or not self._tracker.acknowledges_locally:
            return False
        if not self._ranges.is_free(align_out(offset, len(data), self._block)):
            return False
        for future in self._write_step(offset, data)():
            future.result()
        return True

    async def write(self, offset: int, data: bytes, fua: bool) -> None:
        step = self._write_step(offset, data)
        await self._publish(offset, len(data), step, fua, inline=len(data) <= INLINE_MAX_BYTES)

    async def trim(self, offset: int, length: int, fua: bool) -> None:
        await self._publish(offset, length, self._zero_step(offset, length, trim=True, may_punch=True), fua)

    async def zero(self, offset: int, length: int, fua: bool, may_punch: bool) -> None:
        step = self._zero_step(offset, length, trim=False, may_punch=may_punch)
        await self._publish(offset, length, step, fua)

    async def zero_fast(self, offset: int, length: int, fua: bool, may_punch: bool) -> bool:
        """NBD_CMD_FLAG_FAST_ZERO: zero (and publish) only when the image zeroes without writing zeros."""
        if not self._image.zeroes_fast(may_punch):
            return False
        await self.zero(offset, length, fua, may_punch)
        return True

    async def block_status(self, offset: int, length: int) -> list[tuple[int, int]]:
        """Holes and data of the image (base:allocation), from SEEK_DATA/SEEK_HOLE."""
        return await self._run(self._image.extents, offset, length)

    async def cache(self, offset: int, length: int) -> None:
        """NBD_CMD_CACHE: have the kernel read the range ahead."""
        await self._run(self._image.prefetch, offset, length)

    async def flush(self) -> None:
        """Image durable, every write acknowledged so far at its ack mode's guarantee, then a
        flush-consistent Marker behind them (awaited only when the tracker has not done it)."""
        await self._run(self._image.sync)
        await self._run(self._tracker.flush)
        await _settled([self._tracker.submit_marker("FLUSH")])

    async def close(self) -> None:
        """Image durable and every event confirmed (or timed out) before the image closes."""
        try:
            await self._run(self._image.sync)
            await self._run(self._tracker.flush, SHUTDOWN_FLUSH_TIMEOUT)
        finally:
            self._executor.shutdown(wait=True)
            self._image.close()

    async def _publish(
        self, offset: int, length: int, apply: Callable[[], list[Future[None]]], fua: bool, *, inline: bool = False
    ) -> None:
        """Hold the aligned range from intent to submit, then wait for the confirmations."""
        span = align_out(offset, length, self._block)
        async with self._ranges.hold(span):
            futures = apply() if inline else await self._run(apply)
        await _settled(futures)
        if fua:
            await self._run(self._image.sync)

    def _write_step(self, offset: int, data: bytes) -> Callable[[], list[Future[None]]]:
        def step() -> list[Future[None]]:
            span = align_out(offset, len(data), self._block)
            self._unfenced_intent(span.offset, span.length)
            self._image.write(offset, data)
            if is_aligned(offset, len(data), self._block):
                return [self._tracker.submit_write(offset, data)]
            return [self._submit_readback(span)]

        return step

    def _zero_step(self, offset: int, length: int, *, trim: bool, may_punch: bool) -> Callable[[], list[Future[None]]]:
        def step() -> list[Future[None]]:
            span = align_out(offset, length, self._block)
            self._unfenced_intent(span.offset, span.length)
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


def _why_python(native_writes: bool, acknowledges_locally: bool) -> str | None:
    """Why plain writes take the Python path (None: they are served in C)."""
    if not native_writes:
        return "in Python (native writes switched off)"
    if not acknowledges_locally:
        return "in Python (acknowledged by Kafka: each write waits for its event)"
    if not inline_writes.available():
        return "in Python (the C extension was not built: no compiler at install time)"
    return None


async def _settled(futures: list[Future[None]]) -> None:
    """Wait for the tracker's futures; done ones (local acknowledgement) cost no thread hop."""
    waiting = [future for future in futures if not future.done()]
    for future in futures:
        if future.done():
            future.result()
    if waiting:
        await asyncio.gather(*(asyncio.wrap_future(future) for future in waiting))
