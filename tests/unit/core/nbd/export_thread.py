"""Any `Export` served by `run_export` on its own event loop in a thread, for tests."""

from __future__ import annotations

import asyncio
import threading

from tidemark.core.nbd.export import Export
from tidemark.core.nbd.limits import ServerOptions
from tidemark.core.nbd.server import new_event_loop, run_export


class ExportThread:
    def __init__(self, export: Export, options: ServerOptions | None = None, host: str = "127.0.0.1") -> None:
        self.export = export
        self.options = options
        self.listen = host
        self.error: BaseException | None = None
        self.host, self.port = "", 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="nbd-export-under-test", daemon=True)

    def url(self) -> str:
        return f"nbd://{self.host}:{self.port}/{self.export.name}"

    def start(self) -> ExportThread:
        self._thread.start()
        if not self._ready.wait(10) or not self.host:
            self.stop()
            raise RuntimeError(f"NBD server did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "NBD server did not shut down"
        assert self.error is None, f"server thread failed: {self.error!r}"

    def __enter__(self) -> ExportThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # reported by start()/stop()
            self.error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def ready(host: str, port: int) -> None:
            self.host, self.port = host, port
            self._ready.set()

        await run_export(self.export, self.listen, 0, stop=self._stop, ready=ready, options=self.options)
