"""A deliberately small NBD client on a plain socket, for malformed and edge-case input."""

from __future__ import annotations

import socket

from tidemark.core.nbd import protocol as p


def recv_exact(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"server closed the connection after {len(data)} of {count} bytes")
        data += chunk
    return bytes(data)


def is_closed(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True when the server closed the connection (EOF) within `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def connect(port: int, *, client_flags: int = p.FLAG_C_FIXED_NEWSTYLE | p.FLAG_C_NO_ZEROES) -> socket.socket:
    """Connect and complete the handshake up to option haggling."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    nbdmagic, ihaveopt, flags = p.HANDSHAKE.unpack(recv_exact(sock, p.HANDSHAKE.size))
    assert (nbdmagic, ihaveopt) == (p.NBDMAGIC, p.IHAVEOPT)
    assert flags == p.FLAG_FIXED_NEWSTYLE | p.FLAG_NO_ZEROES
    sock.sendall(p.CLIENT_FLAGS.pack(client_flags))
    return sock


def send_option(sock: socket.socket, option: int, data: bytes = b"") -> None:
    sock.sendall(p.OPTION_HEADER.pack(p.IHAVEOPT, option, len(data)) + data)


def read_option_reply(sock: socket.socket) -> tuple[int, int, bytes]:
    """(option, reply type, data) of one option reply."""
    magic, option, reply_type, length = p.OPTION_REPLY_HEADER.unpack(recv_exact(sock, p.OPTION_REPLY_HEADER.size))
    assert magic == p.OPTION_REPLY_MAGIC
    return option, reply_type, recv_exact(sock, length)


def option_replies(sock: socket.socket, option: int, data: bytes = b"") -> list[tuple[int, bytes]]:
    """Send an option and collect (reply type, data) up to the final ACK or error."""
    send_option(sock, option, data)
    replies = []
    while True:
        answered, reply_type, payload = read_option_reply(sock)
        assert answered == option
        replies.append((reply_type, payload))
        if reply_type == p.REP_ACK or reply_type & (1 << 31):
            return replies


def info_request(name: str, *info_types: int) -> bytes:
    raw = name.encode()
    types = b"".join(p.INFO_TYPE.pack(t) for t in info_types)
    return p.INFO_REQUEST_NAME_LENGTH.pack(len(raw)) + raw + p.INFO_REQUEST_COUNT.pack(len(info_types)) + types


def open_export(port: int, name: str = "vol1") -> socket.socket:
    """Connect and enter transmission with NBD_OPT_GO."""
    sock = connect(port)
    replies = option_replies(sock, p.OPT_GO, info_request(name, p.INFO_BLOCK_SIZE))
    assert replies[-1][0] == p.REP_ACK, replies
    return sock


def send_request(
    sock: socket.socket, kind: int, handle: int, offset: int, length: int, flags: int = 0, data: bytes = b""
) -> None:
    sock.sendall(p.REQUEST.pack(p.REQUEST_MAGIC, flags, kind, handle, offset, length) + data)


def read_reply(sock: socket.socket) -> tuple[int, int]:
    """(error, handle) of one simple reply (the caller reads any READ data)."""
    magic, error, handle = p.SIMPLE_REPLY.unpack(recv_exact(sock, p.SIMPLE_REPLY.size))
    assert magic == p.SIMPLE_REPLY_MAGIC
    return error, handle


def nbd_read(sock: socket.socket, offset: int, length: int, handle: int = 1) -> tuple[int, bytes]:
    send_request(sock, p.CMD_READ, handle, offset, length)
    error, answered = read_reply(sock)
    assert answered == handle
    return error, recv_exact(sock, length) if error == 0 else b""


def nbd_write(sock: socket.socket, offset: int, data: bytes, handle: int = 2, flags: int = 0) -> int:
    send_request(sock, p.CMD_WRITE, handle, offset, len(data), flags, data)
    error, answered = read_reply(sock)
    assert answered == handle
    return error


def read_structured(sock: socket.socket) -> tuple[int, int, int, bytes]:
    """(flags, type, handle, payload) of one structured reply chunk."""
    magic, flags, kind, handle, length = p.STRUCTURED_REPLY.unpack(recv_exact(sock, p.STRUCTURED_REPLY.size))
    assert magic == p.STRUCTURED_REPLY_MAGIC
    return flags, kind, handle, recv_exact(sock, length)
