"""The NBD server running in a thread over the recording tracker double (`tracker_double.py`),
which checks the NBD front end's contract: each submit covered by an earlier intent."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tidemark.core.nbd.server import new_event_loop
from tidemark.producers.nbd.server import run_nbd

from ..tracker_double import RecordingTracker

VOLUME = "vol1"
BLOCK = 4096


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
        thread = ServerThread(RecordingTracker(size, name=VOLUME, intents_required=True, **options), image)
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
