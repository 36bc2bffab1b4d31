"""`serve_export`'s `started` hook: a job that runs beside the server and may end the serving."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tests.unit.core.nbd.rawclient import nbd_read, open_export
from tidemark.core.nbd.export import ThreadedExport
from tidemark.core.nbd.server import serve_export

from .test_core_server import MemoryExport


def test_a_job_started_beside_the_server_can_stop_it_once_a_client_was_served() -> None:
    listening = threading.Event()
    bound: list[int] = []
    served: list[bytes] = []  # what the client read
    threads: list[threading.Thread] = []

    def ready(host: str, port: int) -> None:
        bound.append(port)
        listening.set()

    def started(stop: Callable[[], None]) -> None:
        def job() -> None:  # a client reads a block, then the job ends the serving as a finished relocation does
            assert listening.wait(10), "the server never listened"
            client = open_export(bound[0], "mem")
            served.append(nbd_read(client, 4096, 4096)[1])
            client.close()
            stop()

        threads.append(threading.Thread(target=job, daemon=True))
        threads[0].start()

    export = MemoryExport("mem", read_only=True)
    export.data[4096:8192] = b"\x5a" * 4096
    serve_export(ThreadedExport(export), "127.0.0.1", 0, ready=ready, started=started)
    threads[0].join(10)
    assert served == [b"\x5a" * 4096] and not threads[0].is_alive()
