"""What the NBD server serves: an `Export` backend, optional capabilities, and an adapter for blocking backends.

The server checks every request (flags, range, read-only) before it reaches the backend, so a
backend only sees valid, non-empty ranges inside the export. Backends that do blocking file I/O
implement `BlockingExport` and are wrapped in `ThreadedExport`, which runs each call in a thread
pool; backends with their own concurrency (the NBD tracker) implement `Export` directly.

Optional capabilities (checked once per server with `isinstance`; an export without them still
serves every command):

- `BlockStatusExport.block_status`: holes and zeros for NBD_CMD_BLOCK_STATUS (`base:allocation`).
  Without it every range is reported as allocated data (status 0), which the protocol allows.
- `CacheExport.cache`: NBD_CMD_CACHE (prefetch). Without it CACHE succeeds and does nothing.
- `FastZeroExport.zero_fast`: NBD_CMD_WRITE_ZEROES with NBD_CMD_FLAG_FAST_ZERO. Without it such a
  request fails at once with ENOTSUP (the client then writes zeros itself, or skips them).
- `ConnectExport.client_connected`: told of every client the server accepts (on the event loop,
  so it must not block); the NBD tracker starts a new read profile there.
- `InlineExport.try_read` / `try_write`: a synchronous fast path run on the event loop thread,
  with no task and no thread hop. It must be cheap and must never block for long (page-cache
  I/O of a few pages, no fsync, no waiting on locks or Kafka). It returns None / False when it
  cannot serve the call that way, and the server then uses the asynchronous method.
- `InlineWriteExport.inline_write_hooks`: the same for whole runs of plain aligned WRITEs, served
  in C (`inline_writes.py`); asked before each run, it returns None whenever `try_write` would
  not be safe for every write of the run.

Invariant every export keeps (the server advertises NBD_FLAG_CAN_MULTI_CONN on it): `flush`
covers every write whose reply was sent, on any connection of the server, not only its caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar, runtime_checkable

from .inline_writes import InlineWriteHooks

T = TypeVar("T")
DEFAULT_IO_THREADS = 16

Extents = Sequence[tuple[int, int]]  # (length, base:allocation flags), consecutive from the offset asked


class Export(Protocol):
    """An asynchronous export backend."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def block_size(self) -> int:
        """Preferred request granularity (advertised to clients; any byte offset is accepted)."""
        ...

    @property
    def read_only(self) -> bool: ...

    async def read(self, offset: int, length: int) -> bytes: ...

    async def write(self, offset: int, data: bytes, fua: bool) -> None:
        """`data` may be a bytearray (large payloads are received in place); the server never reuses it."""
        ...

    async def flush(self) -> None:
        """Every write already answered, on any connection, is durable (see the module invariant)."""
        ...

    async def trim(self, offset: int, length: int, fua: bool) -> None: ...

    async def zero(self, offset: int, length: int, fua: bool, may_punch: bool) -> None: ...

    async def close(self) -> None:
        """Called once when the server stops, after every connection finished."""
        ...


@runtime_checkable
class BlockStatusExport(Protocol):
    async def block_status(self, offset: int, length: int) -> Extents:
        """At least one (length, flags) descriptor from `offset`, together at most `length` bytes."""
        ...


@runtime_checkable
class CacheExport(Protocol):
    async def cache(self, offset: int, length: int) -> None: ...


@runtime_checkable
class FastZeroExport(Protocol):
    async def zero_fast(self, offset: int, length: int, fua: bool, may_punch: bool) -> bool:
        """Zero the range only if that needs no writing of zeros; False: nothing done (ENOTSUP)."""
        ...


@runtime_checkable
class ConnectExport(Protocol):
    def client_connected(self) -> None: ...


@runtime_checkable
class InlineExport(Protocol):
    def try_read(self, offset: int, length: int) -> bytes | None: ...

    def try_write(self, offset: int, data: bytes, fua: bool) -> bool: ...


@runtime_checkable
class InlineWriteExport(Protocol):
    def inline_write_hooks(self) -> InlineWriteHooks | None:
        """The run's image and callbacks when plain aligned WRITEs of up to `max_length` bytes may be
        served without a task: no other write holds a range, the export is writable, and `submit`
        returns at once. None otherwise (every request then takes the Python path)."""
        ...


class BlockingExport(Protocol):
    """The same operations as blocking calls; must be safe to call from several threads at once.

    Optional members, found with `getattr`: `extents(offset, length) -> Extents` (block status),
    `zero_fast(offset, length, may_punch) -> bool` (fast zeroing), `cache(offset, length)`, and
    `inline_io_limit: int`, the largest read or write (bytes) cheap enough to run on the event
    loop thread (page-cache I/O); absent or 0, every call goes to the thread pool.
    """

    name: str
    size: int
    block_size: int
    read_only: bool

    def read(self, offset: int, length: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...

    def flush(self) -> None: ...

    def trim(self, offset: int, length: int) -> None: ...

    def zero(self, offset: int, length: int, may_punch: bool) -> None: ...

    def close(self) -> None: ...


class ThreadedExport:
    """Runs a `BlockingExport` in a thread pool; FUA becomes a flush after the write.

    It offers every optional capability: those the backend lacks get the protocol's safe
    defaults (all data, CACHE does nothing, fast zero refused, no inline I/O).
    """

    def __init__(self, backend: BlockingExport, io_threads: int = DEFAULT_IO_THREADS) -> None:
        self._backend = backend
        self._executor = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="nbd-io")
        self._inline_limit: int = getattr(backend, "inline_io_limit", 0)

    @property
    def name(self) -> str:
        return self._backend.name

    @property
    def size(self) -> int:
        return self._backend.size

    @property
    def block_size(self) -> int:
        return self._backend.block_size

    @property
    def read_only(self) -> bool:
        return self._backend.read_only

    async def read(self, offset: int, length: int) -> bytes:
        return await self._run(self._backend.read, offset, length)

    async def write(self, offset: int, data: bytes, fua: bool) -> None:
        await self._run(self._backend.write, offset, data)
        if fua:
            await self.flush()

    def try_read(self, offset: int, length: int) -> bytes | None:
        return self._backend.read(offset, length) if length <= self._inline_limit else None

    def try_write(self, offset: int, data: bytes, fua: bool) -> bool:
        if fua or len(data) > self._inline_limit:
            return False
        self._backend.write(offset, data)
        return True

    async def flush(self) -> None:
        await self._run(self._backend.flush)

    async def trim(self, offset: int, length: int, fua: bool) -> None:
        await self._run(self._backend.trim, offset, length)
        if fua:
            await self.flush()

    async def zero(self, offset: int, length: int, fua: bool, may_punch: bool) -> None:
        await self._run(self._backend.zero, offset, length, may_punch)
        if fua:
            await self.flush()

    async def zero_fast(self, offset: int, length: int, fua: bool, may_punch: bool) -> bool:
        zero_fast: Callable[[int, int, bool], bool] | None = getattr(self._backend, "zero_fast", None)
        if zero_fast is None or not await self._run(zero_fast, offset, length, may_punch):
            return False
        if fua:
            await self.flush()
        return True

    async def block_status(self, offset: int, length: int) -> Extents:
        extents: Callable[[int, int], Extents] | None = getattr(self._backend, "extents", None)
        if extents is None:
            return [(length, 0)]
        return await self._run(extents, offset, length)

    async def cache(self, offset: int, length: int) -> None:
        cache: Callable[[int, int], None] | None = getattr(self._backend, "cache", None)
        if cache is not None:
            await self._run(cache, offset, length)

    async def close(self) -> None:
        try:
            await self._run(self._backend.close)
        finally:
            self._executor.shutdown(wait=True)

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
