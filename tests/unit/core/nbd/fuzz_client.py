"""Malformed NBD clients for the fuzzers: each plays one bad conversation and says what it saw.

Every conversation ends with the client closing its socket. What the server owes a bad client
is checked here as far as the protocol fixes it (an error reply with the right handle, an option
error, or a closed connection); `Seen` records the rest so properties can be asserted on it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from tidemark.core.nbd import protocol as p

from .rawclient import connect, open_export, recv_exact

# Waiting this long for an answer that never comes means the server is waiting for more bytes
# (a legitimate state for a short message); the client then leaves, like a vanishing client.
# Garbage gets a shorter wait: nothing specific is expected of the server but staying up.
ANSWER_WAIT_S = 0.3
GARBAGE_WAIT_S = 0.05
READ_LIMIT = 2 << 20


@dataclass
class Seen:
    """What the server did with one malformed conversation."""

    replies: list[tuple[int, int]]  # (error, handle) of simple replies, in arrival order
    option_errors: list[int]  # option reply types with the error bit set
    closed: bool  # the server closed the connection (EOF or reset) before the client left


def _drain(
    sock: socket.socket, complete: Callable[[bytes], bool] | None = None, wait: float = ANSWER_WAIT_S
) -> tuple[bytes, bool]:
    """What the server sends until `complete(data)`, EOF, or `wait` seconds of silence.

    Returns the bytes and True when the server closed the connection.
    """
    sock.settimeout(wait)
    data = bytearray()
    while len(data) < READ_LIMIT and not (complete is not None and complete(bytes(data))):
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return bytes(data), False
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk
    return bytes(data), False


def _send(sock: socket.socket, data: bytes) -> bool:
    """False when the server already closed the connection (a valid answer to garbage)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def _parse_simple_replies(data: bytes, read_lengths: dict[int, int]) -> list[tuple[int, int]]:
    """Simple replies (skipping READ data); asserts the framing is valid."""
    replies = []
    at = 0
    while at + p.SIMPLE_REPLY.size <= len(data):
        magic, error, handle = p.SIMPLE_REPLY.unpack(data[at : at + p.SIMPLE_REPLY.size])
        assert magic == p.SIMPLE_REPLY_MAGIC, f"reply magic {magic:#x} at byte {at}"
        at += p.SIMPLE_REPLY.size
        if error == 0:
            at += read_lengths.get(handle, 0)
        replies.append((error, handle))
    return replies


def _parse_option_replies(data: bytes) -> list[int]:
    """Reply types of option replies; asserts their framing is valid."""
    types = []
    at = 0
    while at + p.OPTION_REPLY_HEADER.size <= len(data):
        magic, _, reply_type, length = p.OPTION_REPLY_HEADER.unpack(data[at : at + p.OPTION_REPLY_HEADER.size])
        assert magic == p.OPTION_REPLY_MAGIC, f"option reply magic {magic:#x} at byte {at}"
        at += p.OPTION_REPLY_HEADER.size + length
        types.append(reply_type)
    return types


def _options_answered(data: bytes) -> bool:
    """The option replies received end with the final one (an ACK or an error)."""
    types = _parse_option_replies(data)
    return bool(types) and (types[-1] == p.REP_ACK or bool(types[-1] & (1 << 31)))


def _reply_answered(read_length: int) -> Callable[[bytes], bool]:
    def done(data: bytes) -> bool:
        if len(data) < p.SIMPLE_REPLY.size:
            return False
        _, error, _ = p.SIMPLE_REPLY.unpack(data[: p.SIMPLE_REPLY.size])
        return error != 0 or len(data) >= p.SIMPLE_REPLY.size + read_length

    return done


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def after_handshake(port: int, client_flags: int, payload: bytes) -> Seen:
    """Any client flags, then arbitrary bytes where options belong."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        recv_exact(sock, p.HANDSHAKE.size)
        sent = _send(sock, p.CLIENT_FLAGS.pack(client_flags) + payload)
        data, closed = _drain(sock, wait=GARBAGE_WAIT_S if client_flags == 3 else ANSWER_WAIT_S)
        # a server that entered transmission on EXPORT_NAME answers in another layout; only check
        # option framing when the bytes start like an option reply
        errors = []
        if data[:8] == p.OPTION_REPLY_MAGIC.to_bytes(8, "big"):
            errors = [t for t in _parse_option_replies(data) if t & (1 << 31)]
        return Seen([], errors, closed or not sent)
    finally:
        _close(sock)


def option(port: int, magic: int, option_code: int, declared: int, data: bytes) -> Seen:
    """One option whose header may lie: wrong magic, any code, a length past what is sent."""
    sock = connect(port)
    try:
        sent = _send(sock, p.OPTION_HEADER.pack(magic, option_code, declared) + data)
        answer, closed = _drain(sock, None if option_code == p.OPT_EXPORT_NAME else _options_answered)
        errors = []
        if magic == p.IHAVEOPT and option_code != p.OPT_EXPORT_NAME:
            errors = [t for t in _parse_option_replies(answer) if t & (1 << 31)]
        return Seen([], errors, closed or not sent)
    finally:
        _close(sock)


def go_with_name(port: int, name: bytes, info_types: list[int], declared_name_length: int | None) -> Seen:
    """NBD_OPT_GO whose name length field may disagree with the name sent."""
    raw = p.INFO_REQUEST_NAME_LENGTH.pack(len(name) if declared_name_length is None else declared_name_length)
    raw += name + p.INFO_REQUEST_COUNT.pack(len(info_types)) + b"".join(p.INFO_TYPE.pack(t) for t in info_types)
    sock = connect(port)
    try:
        sent = _send(sock, p.OPTION_HEADER.pack(p.IHAVEOPT, p.OPT_GO, len(raw)) + raw)
        answer, closed = _drain(sock, _options_answered)
        errors = [t for t in _parse_option_replies(answer) if t & (1 << 31)]
        return Seen([], errors, closed or not sent)
    finally:
        _close(sock)


def request(
    port: int,
    export: str,
    magic: int,
    flags: int,
    kind: int,
    handle: int,
    offset: int,
    length: int,
    payload: bytes,
    wait: float = ANSWER_WAIT_S,
) -> Seen:
    """One request in transmission; `payload` may be shorter than `length` (the client then leaves
    after `wait` seconds of silence)."""
    sock = open_export(port, export)
    try:
        header = p.REQUEST.pack(magic, flags, kind, handle, offset, length)
        sent = _send(sock, header + payload)
        reads = {handle: length} if kind == p.CMD_READ else {}
        answer, closed = _drain(sock, _reply_answered(reads.get(handle, 0)), wait)
        replies = _parse_simple_replies(answer, reads) if magic == p.REQUEST_MAGIC else []
        return Seen(replies, [], closed or not sent)
    finally:
        _close(sock)


def garbage_in_transmission(port: int, export: str, payload: bytes) -> Seen:
    """Arbitrary bytes where requests belong."""
    sock = open_export(port, export)
    try:
        sent = _send(sock, payload)
        _, closed = _drain(sock, wait=GARBAGE_WAIT_S)
        return Seen([], [], closed or not sent)
    finally:
        _close(sock)


def vanish_mid_request(port: int, export: str, kind: int, offset: int, length: int, cut: int) -> None:
    """Send the first `cut` bytes of a request (header + payload) and disappear without reading."""
    sock = open_export(port, export)
    try:
        message = p.REQUEST.pack(p.REQUEST_MAGIC, 0, kind, 7, offset, length)
        if kind == p.CMD_WRITE:
            message += bytes(min(length, 1 << 16))
        _send(sock, message[:cut])
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    finally:
        _close(sock)
