"""What the NBD server serves: an `Export` backend, and an adapter for blocking backends.

The server checks every request (flags, range, read-only) before it reaches the backend, so a
backend only sees valid, non-empty ranges inside the export. Backends that do blocking file I/O
implement `BlockingExport` and are wrapped in `ThreadedExport`, which runs each call in a thread
pool; backends with their own concurrency (the NBD tracker) implement `Export` directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

T = TypeVar("T")
DEFAULT_IO_THREADS = 16


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

    async def write(self, offset: int, data: bytes, fua: bool) -> None: ...

    async def flush(self) -> None: ...

    async def trim(self, offset: int, length: int, fua: bool) -> None: ...

    async def zero(self, offset: int, length: int, fua: bool, may_punch: bool) -> None: ...

    async def close(self) -> None:
        """Called once when the server stops, after every connection finished."""
        ...


class BlockingExport(Protocol):
    """The same operations as blocking calls; must be safe to call from several threads at once."""

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
    """Runs a `BlockingExport` in a thread pool; FUA becomes a flush after the write."""

    def __init__(self, backend: BlockingExport, io_threads: int = DEFAULT_IO_THREADS) -> None:
        self._backend = backend
        self._executor = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="nbd-io")

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

    async def close(self) -> None:
        try:
            await self._run(self._backend.close)
        finally:
            self._executor.shutdown(wait=True)

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
