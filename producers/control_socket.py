"""The tracker's control endpoint: a unix socket in its state folder that takes marker requests.

A requested recovery point must hold every write the tracker acknowledged. With `--ack local` a
Marker written straight to Kafka can land before writes acknowledged but not shipped yet; asked
here, the tracker queues the marker behind them (`submit_marker`: in order, and across
pull-ahead after the drain).

Wire protocol (one request per connection, UTF-8 lines of at most `MAX_LINE` bytes):

    request   marker REQUESTED\\n            or   marker REQUESTED label=<text to the end of line>\\n
    reply     ok\\n                          or   error <what happened and what to do>\\n

The socket is `<state folder>/control.sock`, mode 0600 (bound under a temporary name, made
private, then renamed), so only the tracker's user can ask. Only a tracker on this host with the
same state directory answers; `request_marker` returns False when none does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .exceptions import TrackerError

log = logging.getLogger(__name__)
SOCKET_NAME = "control.sock"
MAX_LINE = 4096
CLIENT_TIMEOUT_SECONDS = 60.0


class ControlRequestError(TrackerError):
    """A request outside the protocol, or one the tracker refused."""


@dataclass(frozen=True)
class MarkerRequest:
    kind: str
    label: str | None


def parse_request(line: bytes) -> MarkerRequest:
    """The request of one line (without its newline); raises ControlRequestError saying why not."""
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        raise ControlRequestError("the request is not UTF-8") from exc
    verb, _, rest = text.partition(" ")
    kind, _, label_part = rest.partition(" ")
    if verb != "marker" or kind != "REQUESTED":
        raise ControlRequestError(f"unknown request {text[:80]!r}; this tracker takes 'marker REQUESTED [label=...]'")
    if not label_part:
        return MarkerRequest(kind, None)
    if not label_part.startswith("label="):
        raise ControlRequestError(f"expected label=... after the marker kind, not {label_part[:80]!r}")
    return MarkerRequest(kind, label_part.removeprefix("label=") or None)


def format_request(request: MarkerRequest) -> bytes:
    if request.label is not None and ("\n" in request.label or "\r" in request.label):
        raise ControlRequestError("a label cannot hold a line break")
    label = "" if request.label is None else f" label={request.label}"
    line = f"marker {request.kind}{label}\n".encode()
    if len(line) > MAX_LINE:
        raise ControlRequestError(f"the request is {len(line)} bytes, more than {MAX_LINE}; shorten the label")
    return line


def socket_path(state_folder: Path) -> Path:
    return state_folder / SOCKET_NAME


class ControlServer:
    """Serves the control socket in a daemon thread; `handle` answers a request (or raises with
    a message for the client)."""

    def __init__(self, state_folder: Path, handle: Callable[[MarkerRequest], None]) -> None:
        self.path = socket_path(state_folder)
        self._handle = handle
        self._stopping = threading.Event()
        self.path.unlink(missing_ok=True)  # the caller holds the tracker lock: any socket here is stale
        staging = self.path.with_name(f".ctl{os.getpid()}")  # not longer than the final name
        staging.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.bind(str(staging))
        except OSError:  # e.g. a path past the 107 bytes a unix socket address holds
            self._sock.close()
            raise
        os.chmod(staging, 0o600)
        os.rename(staging, self.path)
        self._sock.listen(8)
        self._sock.settimeout(0.5)
        self._thread = threading.Thread(target=self._serve, name=f"tracker-control-{state_folder.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._sock.close()
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5.0)
                reply = self._answer(conn)
                try:
                    conn.sendall(reply)
                except OSError as exc:
                    log.info("control client left before the reply %r: %s", reply.strip(), exc)

    def _answer(self, conn: socket.socket) -> bytes:
        try:
            line = _read_line(conn)
            self._handle(parse_request(line))
        except (TrackerError, OSError, TimeoutError) as exc:  # outside the protocol, fenced, stopped
            log.warning("control request refused: %s", exc)
            return f"error {exc}\n".encode()
        return b"ok\n"


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(MAX_LINE + 1 - len(data))
        if not chunk:
            raise ControlRequestError("the request ended without a newline")
        data += chunk
        if len(data) > MAX_LINE:
            raise ControlRequestError(f"the request is longer than {MAX_LINE} bytes")
    return data.split(b"\n", 1)[0]


def request_marker(state_folder: Path, label: str | None, timeout: float = CLIENT_TIMEOUT_SECONDS) -> bool:
    """Ask the tracker serving `state_folder` for a REQUESTED marker behind every write it
    acknowledged. True once it queued it; False when no tracker answers there. A tracker that
    refuses raises ControlRequestError with its reason."""
    line = format_request(MarkerRequest("REQUESTED", label))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(socket_path(state_folder)))
        except OSError:  # no socket, no listener, or a path too long for a unix socket
            return False
        sock.sendall(line)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(MAX_LINE)
            if not chunk:
                break
            reply += chunk
    text = reply.decode(errors="replace").strip()
    if text == "ok":
        return True
    raise ControlRequestError(f"the tracker refused the marker: {text.removeprefix('error ') or 'no answer'}")
