"""The limits an NBD server keeps against slow, idle or too many clients (one frozen dataclass
the CLI fills from its flags), and the server-wide budget of bytes in flight."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import protocol as p
from .concurrency import ByteBudget
from .tls import TlsOptions

HANDSHAKE_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
MAX_CONNECTIONS = 64
SERVER_IN_FLIGHT_BYTES = 8 * p.MAX_PAYLOAD
SHUTDOWN_GRACE = 2.5


@dataclass(frozen=True)
class ServerOptions:
    """How long and how much the server grants its clients.

    handshake_timeout: seconds from accept to the end of option haggling; then the connection closes.
    idle_timeout: seconds a connection in transmission may send nothing while none of its
        requests is in flight (None: no limit; an idle VM disk connection is normal).
    request_timeout: seconds a half-sent request (header or payload incomplete) may wait for
        its next byte; then the connection closes and its bytes in flight are released.
    max_connections: connections open at once; further clients are closed at once (logged).
    max_in_flight_bytes: payload and read bytes admitted over all connections together; past it
        every connection stops reading until requests finish (each connection also keeps its own
        IN_FLIGHT_BYTES bound).
    shutdown_grace: seconds `close` waits for clients to take their last replies; then their
        connections are cut, so SIGTERM ends the server within this bound whatever clients do.
    tls: NBD_OPT_STARTTLS with x509 certificates (`--tls off|on|require`, cert, key, CA).
    """

    handshake_timeout: float = HANDSHAKE_TIMEOUT
    idle_timeout: float | None = None
    request_timeout: float | None = REQUEST_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    max_in_flight_bytes: int = SERVER_IN_FLIGHT_BYTES
    shutdown_grace: float = SHUTDOWN_GRACE
    tls: TlsOptions = field(default_factory=TlsOptions)


class SharedBudget:
    """The server-wide byte budget; connections it turned away are called back when bytes return."""

    def __init__(self, limit: int) -> None:
        self._budget = ByteBudget(limit)
        self._waiting: list[Callable[[], None]] = []

    def try_acquire(self, amount: int, on_release: Callable[[], None]) -> bool:
        if self._budget.try_acquire(amount):
            return True
        if on_release not in self._waiting:
            self._waiting.append(on_release)
        return False

    def release(self, amount: int) -> None:
        self._budget.release(amount)
        waiting, self._waiting = self._waiting, []
        for wake in waiting:
            wake()
