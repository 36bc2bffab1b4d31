"""A TCP forwarder standing in for a Kafka cluster that comes up late (tests of daemons that wait)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


class Forwarder:
    """Accepts on `port` and pipes each connection to `target` (host, port), both ways."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", port))
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LateKafka:
    """A daemon started (`command`, with `env`) on a bootstrap address that answers nothing until
    `come_up` puts a `Forwarder` to the real cluster (`bootstrap`) on it; output to `log`."""

    def __init__(self, bootstrap: str, env: dict[str, str], command: list[str], log: Path) -> None:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.target = (host, int(port))
        self.port = unused_port()
        self.log = log
        self.forwarder: Forwarder | None = None
        unanswered = env | {"TIDEMARK_BOOTSTRAP": f"127.0.0.1:{self.port}"}
        with log.open("w") as out:
            self.child = subprocess.Popen(command, env=unanswered, stdout=out, stderr=subprocess.STDOUT)

    def __enter__(self) -> LateKafka:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGKILL)
            self.child.wait(30)
        if self.forwarder is not None:
            self.forwarder.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, line: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.output() and time.monotonic() < deadline and self.child.poll() is None:
            time.sleep(0.1)
        assert line in self.output(), f"no {line!r} (exit code {self.child.poll()}):\n{self.output()[-3000:]}"

    def come_up(self) -> None:
        self.forwarder = Forwarder(self.port, self.target)
