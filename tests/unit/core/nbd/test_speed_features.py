"""The core server's speed features on a counting export: real clients skip the holes that block
status reports, structured replies and error chunks on the wire, fast zero refused by default."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from tests.unit.core.nbd.export_thread import ExportThread
from tests.unit.core.nbd.rawclient import (
    connect,
    info_request,
    option_replies,
    read_reply,
    read_structured,
    recv_exact,
    send_request,
)
from tidemark.core.nbd import protocol as p
from tidemark.core.nbd.export import ThreadedExport

from .test_core_server import SIZE, MemoryExport

NBDCOPY_REQUEST = 256 * 1024
DATA = ((64 * 1024, 64 * 1024), (512 * 1024, 128 * 1024))  # (offset, length) holding data; the rest is a hole


class CountingExport(MemoryExport):
    """Counts the bytes clients read; with `holes`, reports every range outside DATA as a hole."""

    def __init__(self, holes: bool) -> None:
        super().__init__("count", read_only=False)
        for number, (offset, length) in enumerate(DATA):
            self.data[offset : offset + length] = bytes([number + 1]) * length
        self.bytes_read = 0
        if holes:
            self.extents = self._extents

    def read(self, offset: int, length: int) -> bytes:
        with self._lock:
            self.bytes_read += length
        return super().read(offset, length)

    def _extents(self, offset: int, length: int) -> list[tuple[int, int]]:
        edges = sorted({0, SIZE, *(o for o, _ in DATA), *(o + n for o, n in DATA)})
        found = []
        for start, end in pairwise(edges):
            if end <= offset or start >= offset + length:
                continue
            data = any(o <= start < o + n for o, n in DATA)
            found.append((min(end, offset + length) - max(start, offset), 0 if data else 3))
        return found


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{command[0]} failed ({done.returncode}): {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(params=[True, False], ids=["holes", "all-data"])
def counted(request: pytest.FixtureRequest) -> Iterator[tuple[CountingExport, ExportThread]]:
    backend = CountingExport(holes=request.param)
    with ExportThread(ThreadedExport(backend)) as thread:
        yield backend, thread


@pytest.mark.nbd
@pytest.mark.parametrize("tool", ["nbdcopy", "qemu-img"])
def test_copies_read_only_the_data_block_status_reports(counted, tool: str, tmp_path: Path) -> None:
    backend, thread = counted
    target = tmp_path / "copy.raw"
    if tool == "nbdcopy":
        run("nbdcopy", thread.url(), str(target))
    else:
        run("qemu-img", "convert", "-f", "raw", "-O", "raw", thread.url(), str(target))
    assert target.read_bytes() == bytes(backend.data)
    data_bytes = sum(length for _, length in DATA)
    if hasattr(backend, "extents"):
        # qemu-img reads exactly the data; nbdcopy reads whole 256 KiB requests that hold any data (two here).
        expected = data_bytes if tool == "qemu-img" else 2 * NBDCOPY_REQUEST
        assert backend.bytes_read == expected, "the copy read holes that block status reported"
    else:
        assert backend.bytes_read == SIZE


@pytest.mark.nbd
def test_nbdinfo_map_of_an_export_without_block_status_is_all_data(counted) -> None:
    backend, thread = counted
    mapped = [
        (e["offset"], e["length"], e["type"]) for e in json.loads(run("nbdinfo", "--map", "--json", thread.url()))
    ]
    if hasattr(backend, "extents"):
        assert [m for m in mapped if m[2] == 0] == [(o, n, 0) for o, n in DATA]
    else:
        assert mapped == [(0, SIZE, 0)]


def structured_session(port: int, name: str = "count") -> socket.socket:
    sock = connect(port)
    assert option_replies(sock, p.OPT_STRUCTURED_REPLY) == [(p.REP_ACK, b"")]
    assert option_replies(sock, p.OPT_STRUCTURED_REPLY)[-1][0] == p.REP_ERR_INVALID  # only once
    assert option_replies(sock, p.OPT_GO, info_request(name))[-1][0] == p.REP_ACK
    return sock


def test_structured_read_is_one_offset_data_chunk_and_errors_are_error_chunks(counted) -> None:
    _, thread = counted
    sock = structured_session(thread.port)
    send_request(sock, p.CMD_READ, 5, DATA[0][0], 4096)
    flags, kind, handle, payload = read_structured(sock)
    assert (flags, kind, handle) == (p.REPLY_FLAG_DONE, p.REPLY_TYPE_OFFSET_DATA, 5)
    assert p.OFFSET_DATA.unpack(payload[:8]) == (DATA[0][0],) and payload[8:] == b"\x01" * 4096
    send_request(sock, p.CMD_READ, 6, SIZE, 4096)
    flags, kind, handle, payload = read_structured(sock)
    assert (flags, kind, handle) == (p.REPLY_FLAG_DONE, p.REPLY_TYPE_ERROR, 6)
    assert p.ERROR_CHUNK.unpack(payload[:6]) == (p.EINVAL, 0)
    send_request(sock, p.CMD_BLOCK_STATUS, 7, 0, 4096)  # no metadata context was selected
    flags, kind, handle, payload = read_structured(sock)
    assert (kind, handle, p.ERROR_CHUNK.unpack(payload[:6])[0]) == (p.REPLY_TYPE_ERROR, 7, p.EINVAL)
    send_request(sock, p.CMD_WRITE, 8, 0, 4, data=b"tide")  # writes keep simple replies
    assert read_reply(sock) == (0, 8)
    sock.close()


def test_fast_zero_is_refused_without_the_capability_and_simple_reads_still_work(counted) -> None:
    _, thread = counted
    sock = connect(thread.port)
    assert option_replies(sock, p.OPT_GO, info_request("count"))[-1][0] == p.REP_ACK
    send_request(sock, p.CMD_WRITE_ZEROES, 1, DATA[0][0], 4096, flags=p.CMD_FLAG_FAST_ZERO)
    assert read_reply(sock) == (p.ENOTSUP, 1)
    send_request(sock, p.CMD_READ, 2, DATA[0][0], 16)
    assert read_reply(sock) == (0, 2) and recv_exact(sock, 16) == b"\x01" * 16
    sock.close()


def test_meta_context_options() -> None:
    with ExportThread(ThreadedExport(CountingExport(holes=True))) as thread:
        sock = connect(thread.port)
        query = p.BASE_ALLOCATION.encode()

        def meta(name: str, *queries: bytes) -> bytes:
            parts = [p.META_REQUEST_LENGTH.pack(len(name)), name.encode(), p.META_REQUEST_LENGTH.pack(len(queries))]
            for q in queries:
                parts += [p.META_REQUEST_LENGTH.pack(len(q)), q]
            return b"".join(parts)

        assert option_replies(sock, p.OPT_SET_META_CONTEXT, meta("count", query))[-1][0] == p.REP_ERR_INVALID
        listed = option_replies(sock, p.OPT_LIST_META_CONTEXT, meta("count"))
        assert listed == [(p.REP_META_CONTEXT, p.META_CONTEXT_REPLY.pack(0) + query), (p.REP_ACK, b"")]
        assert option_replies(sock, p.OPT_LIST_META_CONTEXT, meta("count", b"qemu:dirty-bitmap:x")) == [
            (p.REP_ACK, b"")
        ]
        assert option_replies(sock, p.OPT_LIST_META_CONTEXT, meta("other"))[-1][0] == p.REP_ERR_UNKNOWN
        assert option_replies(sock, p.OPT_LIST_META_CONTEXT, b"\x00\x00\x00\x09abc")[-1][0] == p.REP_ERR_INVALID
        sock.close()
