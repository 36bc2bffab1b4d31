"""The generic NBD server: wire layouts, request checks, a read-only and a writable export."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator

import pytest

from tests.unit.core.nbd.export_thread import ExportThread
from tests.unit.core.nbd.rawclient import nbd_read, nbd_write, open_export, read_reply, send_request
from tidemark.core.nbd import protocol as p
from tidemark.core.nbd.dispatch import Request, check
from tidemark.core.nbd.export import ThreadedExport

SIZE = 1024 * 1024


class MemoryExport:
    """A BlockingExport in a bytearray."""

    def __init__(self, name: str, read_only: bool) -> None:
        self.name, self.size, self.block_size, self.read_only = name, SIZE, 4096, read_only
        self.data = bytearray(SIZE)
        self.flushes = 0
        self.closed = False
        self._lock = threading.Lock()

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        with self._lock:
            self.data[offset : offset + len(data)] = data

    def zero(self, offset: int, length: int, may_punch: bool) -> None:
        self.write(offset, bytes(length))

    def trim(self, offset: int, length: int) -> None:
        self.zero(offset, length, True)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closed = True


@pytest.fixture(params=[True, False], ids=["read-only", "writable"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[MemoryExport, ExportThread]]:
    backend = MemoryExport("mem", read_only=request.param)
    backend.data[:4] = b"tide"
    with ExportThread(ThreadedExport(backend)) as thread:
        yield backend, thread
    assert backend.closed


def test_layouts_match_the_spec_sizes_and_offsets() -> None:
    assert p.HANDSHAKE.size == 18
    assert p.OPTION_HEADER.size == 16
    assert p.OPTION_REPLY_HEADER.size == 20
    assert p.EXPORT_NAME_REPLY.size == 10
    assert p.INFO_EXPORT_REPLY.size == 12
    assert p.INFO_BLOCK_SIZE_REPLY.size == 14
    assert p.REQUEST.size == 28
    assert p.SIMPLE_REPLY.size == 16
    assert p.REQUEST.offset == {"magic": 0, "flags": 4, "type": 6, "handle": 8, "offset": 16, "length": 24}


@pytest.mark.parametrize(
    ("request_", "read_only", "error"),
    [
        (Request(0, p.CMD_READ, 1, 0, 512), True, 0),
        (Request(0, p.CMD_WRITE, 1, 0, 512), True, p.EPERM),
        (Request(0, p.CMD_TRIM, 1, 0, 512), True, p.EPERM),
        (Request(0, p.CMD_WRITE_ZEROES, 1, 0, 512), True, p.EPERM),
        (Request(0, p.CMD_FLUSH, 1, 0, 0), True, 0),
        (Request(p.CMD_FLAG_FUA, p.CMD_READ, 1, 0, 512), True, 0),  # FUA is accepted on any command
        (Request(p.CMD_FLAG_REQ_ONE, p.CMD_READ, 1, 0, 512), True, p.EINVAL),
        (Request(0, p.CMD_WRITE, 1, SIZE, 512), False, p.ENOSPC),
        (Request(0, p.CMD_READ, 1, SIZE, 512), False, p.EINVAL),
        (Request(0, 99, 1, 0, 0), False, p.EINVAL),
    ],
)
def test_requests_are_checked_before_the_backend(request_: Request, read_only: bool, error: int) -> None:
    assert check(request_, SIZE, read_only) == error


def test_read_only_flag_and_eperm_on_the_wire(served) -> None:
    backend, thread = served
    sock = open_export(thread.port, "mem")
    assert nbd_read(sock, 0, 4) == (0, b"tide")
    expected = p.EPERM if backend.read_only else 0
    assert nbd_write(sock, 4096, b"x" * 512) == expected
    send_request(sock, p.CMD_WRITE_ZEROES, 3, 0, 4096)
    assert read_reply(sock) == (expected, 3)
    assert nbd_read(sock, 0, 4, handle=4) == (0, b"tide" if backend.read_only else bytes(4))
    sock.close()


@pytest.mark.nbd
def test_qemu_io_write_fails_only_on_a_read_only_export(served) -> None:
    backend, thread = served
    info = subprocess.run(["nbdinfo", thread.url()], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    assert ("is_read_only: true" in info.stdout) == backend.read_only
    done = subprocess.run(
        ["qemu-io", "-f", "raw", thread.url(), "-c", "write -P 0x5a 8192 4096"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    failed = done.returncode != 0 or "failed" in (done.stdout + done.stderr).lower()
    assert failed == backend.read_only, done.stdout + done.stderr
    assert (backend.data[8192:12288] == b"\x5a" * 4096) != backend.read_only
