"""Clients that misbehave in the background while the NBD fuzzer runs (issue 14).

Each adversary is a thread that plays its part over and over, reconnecting whenever the server
closed it, until `Adversaries.stop`:

- silent: connects and sends nothing; the handshake timeout must close it.
- slow: sends a handshake one byte every SLOW_BYTE_S, longer than the handshake timeout allows;
  the timeout counts from the accept, so the server must close it however steadily bytes come.
- idle: completes the handshake, then sends nothing; with no idle timeout configured the server
  keeps it (an idle VM disk is normal), and it must hinder no one.
- half-sent: claims a MAX_PAYLOAD WRITE, sends half its payload, then stalls; the request timeout
  must close it (and release its bytes). Several at once would hold MAX_PAYLOAD each without the
  server's in-flight budget: that is what the fuzzer's RSS bound checks.

"Must close" means within the timeout plus CLOSE_SLACK_S (a loaded CI machine); anything else is
recorded in `violations`, and `cycles` counts the parts played to their end (the test asserts
that every kind ran).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tidemark.core.nbd import protocol as p
from tidemark.core.nbd.limits import ServerOptions

from .rawclient import info_request, open_export, recv_exact

CLOSE_SLACK_S = 10.0
SLOW_BYTE_S = 0.1
POLL_S = 0.25
SEND_CHUNK = 1 << 20
HALF_PAYLOAD = bytes(p.MAX_PAYLOAD // 2)  # shared by every half-sent client: costs nothing per client


@dataclass
class Adversaries:
    """The misbehaving clients of one server; `start` them, `stop` them, then read the record."""

    port: int
    export: str
    options: ServerOptions
    silent: int = 1
    slow: int = 1
    idle: int = 2
    half_sent: int = 3
    cycles: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    slowest_close: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Adversaries:
        plays: list[tuple[str, int, Callable[[], None]]] = [
            ("silent", self.silent, self._play_silent),
            ("slow", self.slow, self._play_slow),
            ("idle", self.idle, self._play_idle),
            ("half-sent", self.half_sent, self._play_half_sent),
        ]
        for kind, count, play in plays:
            for number in range(count):
                thread = threading.Thread(target=self._loop, args=(kind, play), name=f"{kind}-{number}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
            assert not thread.is_alive(), f"adversary {thread.name} did not stop"

    # --- bookkeeping ---------------------------------------------------------------------------
    def _loop(self, kind: str, play: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                play()
            except ConnectionRefusedError as exc:
                self._violation(f"{kind}: the server refused a connection: {exc}")
                self._stop.wait(POLL_S)
            except OSError:  # reset before the part began (a loaded machine): play it again
                self._stop.wait(POLL_S)
            except Exception as exc:  # a wrong answer in the handshake: recorded, never silent
                self._violation(f"{kind}: {exc!r}")
                self._stop.wait(POLL_S)

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _closed_in_time(self, kind: str, sock: socket.socket, since: float, allowed: float) -> None:
        """Wait for the server to close `sock`; a violation if it has not within `allowed` + slack."""
        closed = _wait_closed(sock, since + allowed + CLOSE_SLACK_S, self._stop)
        if closed is None:
            return  # stopping
        took = time.monotonic() - since
        with self._lock:
            if not closed:
                self.violations.append(f"{kind}: still open {took:.1f} s after it went quiet (limit {allowed} s)")
            self.cycles[kind] += 1
            self.slowest_close[kind] = max(self.slowest_close.get(kind, 0.0), took)

    # --- the parts -----------------------------------------------------------------------------
    def _play_silent(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            self._closed_in_time("silent", sock, time.monotonic(), self.options.handshake_timeout)

    def _play_slow(self) -> None:
        name = self.export + "?" * 40  # long enough that the bytes outlast the handshake timeout
        option = info_request(name, p.INFO_BLOCK_SIZE)
        message = p.CLIENT_FLAGS.pack(p.FLAG_C_FIXED_NEWSTYLE | p.FLAG_C_NO_ZEROES)
        message += p.OPTION_HEADER.pack(p.IHAVEOPT, p.OPT_GO, len(option)) + option
        assert len(message) * SLOW_BYTE_S > self.options.handshake_timeout + 1
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            began = time.monotonic()
            recv_exact(sock, p.HANDSHAKE.size)
            for byte in message:
                if self._stop.is_set():
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break  # closed by the server: checked below
                if _wait_closed(sock, time.monotonic() + SLOW_BYTE_S, self._stop) is not False:
                    break
            else:
                took, limit = time.monotonic() - began, self.options.handshake_timeout
                self._violation(f"slow: all {len(message)} handshake bytes taken over {took:.1f} s (limit {limit} s)")
            self._closed_in_time("slow", sock, began, self.options.handshake_timeout)

    def _play_idle(self) -> None:
        sock = open_export(self.port, self.export)
        with sock:
            while not self._stop.is_set():
                if _wait_closed(sock, time.monotonic() + 1.0, self._stop):
                    self._violation("idle: the server closed an idle connection (no idle timeout is set)")
                    return
            with self._lock:
                self.cycles["idle"] += 1

    def _play_half_sent(self) -> None:
        sock = open_export(self.port, self.export)
        with sock:
            header = p.REQUEST.pack(p.REQUEST_MAGIC, 0, p.CMD_WRITE, 1, 0, p.MAX_PAYLOAD)
            sent = _send_all(sock, header, self._stop) and _send_all(sock, HALF_PAYLOAD, self._stop)
            if not sent:
                return  # stopping, or cut mid-send: a loaded machine may starve this thread past the timeout
            assert self.options.request_timeout is not None
            self._closed_in_time("half-sent", sock, time.monotonic(), self.options.request_timeout)


def _send_all(sock: socket.socket, data: bytes, stop: threading.Event) -> bool | None:
    """Send everything, however long the server keeps us waiting; None when stopping, False when
    the server closed the connection."""
    sock.settimeout(POLL_S)
    view, sent = memoryview(data), 0
    while sent < len(data):
        if stop.is_set():
            return None
        try:
            sent += sock.send(view[sent : sent + SEND_CHUNK])
        except TimeoutError:
            continue
        except OSError:
            return False
    return True


def _wait_closed(sock: socket.socket, deadline: float, stop: threading.Event) -> bool | None:
    """True once the server closed `sock` (EOF or reset), False at `deadline`, None when stopping.
    Whatever the server sends meanwhile (a greeting, say) is read and dropped."""
    while (left := deadline - time.monotonic()) > 0:
        if stop.is_set():
            return None
        sock.settimeout(min(POLL_S, left))
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False
