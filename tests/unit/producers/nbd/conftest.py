"""An in-memory WriteTracker for the NBD protocol tests, and the NBD server running in a thread.

The double is not a Kafka mock: the Kafka path is tested with the real tracker elsewhere. It
records every call, rebuilds a mirror from the submitted events (so a test can compare mirror and
image), and checks the contract a front end must keep: aligned extents, inside the volume, each
submit covered by an earlier intent. Futures complete at once, fail on demand, or wait until
the test opens the gate.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tidemark.core.blocks import Extent
from tidemark.core.nbd.server import new_event_loop
from tidemark.producers.nbd.server import run_nbd

VOLUME = "vol1"
BLOCK = 4096


@dataclass(frozen=True)
class Call:
    op: str  # INTENT, WRITE, ZERO, TRIM, MARKER, FLUSH
    offset: int = 0
    length: int = 0
    data: bytes | None = None
    kind: str | None = None


@dataclass
class RecordingTracker:
    """Implements `WriteTracker`; thread-safe (the server calls it from its thread pool)."""

    size: int
    block: int = BLOCK
    name: str = VOLUME
    fail_submits: bool = False
    gated: bool = False
    hold_first_submit: bool = False
    first_submit_held: threading.Event = field(default_factory=threading.Event)
    release_first_submit: threading.Event = field(default_factory=threading.Event)
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    mirror: bytearray = field(init=False)
    submitted: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open_intents: list[Extent] = field(default_factory=list)
    _gated: list[Future[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mirror = bytearray(self.size)

    @property
    def volume_name(self) -> str:
        return self.name

    @property
    def volume_size(self) -> int:
        return self.size

    @property
    def block_size(self) -> int:
        return self.block

    @property
    def acknowledges_locally(self) -> bool:
        """Done futures on return unless the test fails, gates or holds submits."""
        return not (self.fail_submits or self.gated or self.hold_first_submit)

    def intent(self, offset: int, length: int) -> None:
        with self._lock:
            self._check("intent", offset, length)
            self._open_intents.append(Extent(offset, length))
            self.calls.append(Call("INTENT", offset, length))

    def submit_write(self, offset: int, data: bytes) -> Future[None]:
        return self._submit(Call("WRITE", offset, len(data), bytes(data)))

    def submit_zero(self, offset: int, length: int) -> Future[None]:
        return self._submit(Call("ZERO", offset, length))

    def submit_trim(self, offset: int, length: int) -> Future[None]:
        return self._submit(Call("TRIM", offset, length))

    def submit_marker(self, kind: str, label: str | None = None) -> Future[None]:
        with self._lock:
            self.calls.append(Call("MARKER", kind=kind))
        return self._future()

    def flush(self, timeout: float = 30.0) -> None:
        with self._lock:
            self.calls.append(Call("FLUSH"))

    def open_gate(self) -> None:
        """Confirm every future held back so far, and stop holding new ones."""
        with self._lock:
            self.gated = False
            held, self._gated = self._gated, []
        for future in held:
            future.set_result(None)

    def ops(self, *names: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.op in names]

    def _submit(self, call: Call) -> Future[None]:
        if self.hold_first_submit and not self.first_submit_held.is_set():
            self.first_submit_held.set()
            self.release_first_submit.wait(30)
        with self._lock:
            self._check(call.op, call.offset, call.length)
            end = call.offset + call.length
            if not any(e.offset <= call.offset and end <= e.end for e in self._open_intents):
                self.violations.append(f"{call.op} {call.offset}+{call.length} without an earlier intent")
            self.calls.append(call)
            payload = call.data if call.data is not None else bytes(call.length)  # ZERO and TRIM carry none
            self.mirror[call.offset : call.offset + call.length] = payload
        self.submitted.set()
        if self.fail_submits:
            failed: Future[None] = Future()
            failed.set_exception(RuntimeError("simulated Kafka failure"))
            return failed
        return self._future()

    def _future(self) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            if self.gated:
                self._gated.append(future)
                return future
        future.set_result(None)
        return future

    def _check(self, what: str, offset: int, length: int) -> None:
        if length <= 0 or offset % self.block or length % self.block or offset + length > self.size:
            self.violations.append(f"{what} {offset}+{length} is empty, unaligned or past the end")


@dataclass
class RunningServer:
    host: str
    port: int
    tracker: RecordingTracker
    image: Path

    def url(self, name: str = VOLUME) -> str:
        return f"nbd://{self.host}:{self.port}/{name}"

    def image_bytes(self) -> bytes:
        return self.image.read_bytes()


class ServerThread:
    """`run_nbd` on its own event loop in a thread, stopped through its `stop` event."""

    def __init__(self, tracker: RecordingTracker, image: Path) -> None:
        self.tracker = tracker
        self.image = image
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._address: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="nbd-server-under-test", daemon=True)

    def start(self) -> RunningServer:
        self._thread.start()
        if not self._ready.wait(10) or self._address is None:
            self.stop()
            raise RuntimeError(f"NBD server did not start: {self.error!r}")
        return RunningServer(self._address[0], self._address[1], self.tracker, self.image)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "NBD server did not shut down"

    def _main(self) -> None:
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # reported to the test by start()/teardown
            self.error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def ready(host: str, port: int) -> None:
            self._address = (host, port)
            self._ready.set()

        await run_nbd(self.tracker, self.image, "127.0.0.1", 0, stop=self._stop, ready=ready)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator:
    """Factory: `make_server(size=..., **tracker_options)` -> RunningServer on a free port."""
    threads: list[ServerThread] = []

    def make(size: int = 4 * 1024 * 1024, **options: Any) -> RunningServer:
        image = tmp_path / f"image{len(threads)}.raw"
        image.write_bytes(b"")
        with image.open("r+b") as handle:
            handle.truncate(size)
        thread = ServerThread(RecordingTracker(size, **options), image)
        threads.append(thread)
        return thread.start()

    yield make
    for thread in threads:
        thread.tracker.open_gate()
        thread.tracker.release_first_submit.set()
        thread.stop()
    for thread in threads:
        assert thread.error is None, f"server thread failed: {thread.error!r}"
        assert not thread.tracker.violations, thread.tracker.violations


@pytest.fixture
def server(make_server) -> RunningServer:
    return make_server()
