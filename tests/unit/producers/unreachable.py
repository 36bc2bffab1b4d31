"""A bootstrap address that reaches no broker: for trackers tested without Kafka (no double)."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
