"""The C write fast path (`_inline_writes.c`) against a Python model of what it must serve.

The model states the contract: a run serves plain aligned in-range WRITEs whose payload is in the
buffer, in order, calling intent -> pwrite -> submit for each, and stops before the first request
it does not serve or whose intent, pwrite or submit failed. Hypothesis builds request streams
mixing such writes with every kind of request the path must leave alone (FUA, READ, unaligned,
past the end, empty, oversized, a bad magic, a cut payload).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.core.nbd.export_thread import ExportThread
from tests.unit.core.nbd.rawclient import open_export, read_reply
from tidemark.core.nbd import protocol as p
from tidemark.core.nbd.export import ThreadedExport
from tidemark.core.nbd.inline_writes import InlineWriteHooks, serve_writes

pytestmark = pytest.mark.skipif(serve_writes is None, reason="the C extension was not built (no compiler)")

BLOCK = 512
SIZE = 64 * BLOCK
MAX_TEST_LENGTH = 8 * BLOCK


class Refused(Exception):
    pass


@dataclass
class Calls:
    """The callbacks' record. `refuse_intent`: the intent call that raises (by number);
    `refuse_submit`: the write (by number, over all calls) that submit refuses: it takes the
    writes before it, and raises when that write is the first of its call."""

    refuse_intent: int | None = None
    refuse_submit: int | None = None
    intent_calls: int = 0
    intents: list[tuple[int, int]] = field(default_factory=list)
    submits: list[tuple[int, bytes]] = field(default_factory=list)

    def intent(self, ranges: list[tuple[int, int]]) -> None:
        self.intent_calls += 1
        if self.intent_calls - 1 == self.refuse_intent:
            raise Refused("intent")
        self.intents.extend(ranges)

    def submit(self, writes: list[tuple[int, bytes]]) -> int:
        taken = 0
        for offset, data in writes:
            if len(self.submits) == self.refuse_submit:
                self.refuse_submit = None
                if taken == 0:
                    raise Refused("submit")
                break
            self.submits.append((offset, bytes(data)))
            taken += 1
        return taken


def request(kind: int, offset: int, length: int, handle: int, flags: int = 0, magic: int = p.REQUEST_MAGIC) -> bytes:
    return p.REQUEST.packer.pack(magic, flags, kind, handle, offset, length)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Requests, most of them servable writes, with payloads; possibly cut short at the end."""
    parts: list[bytes] = []
    for handle in range(draw(st.integers(0, 8))):
        shape = draw(st.sampled_from(["write"] * 6 + ["fua", "read", "unaligned", "past-end", "empty", "big", "magic"]))
        blocks = draw(st.integers(1, MAX_TEST_LENGTH // BLOCK))
        offset = draw(st.integers(0, SIZE // BLOCK - blocks)) * BLOCK
        length = blocks * BLOCK
        flags, magic, kind = 0, p.REQUEST_MAGIC, p.CMD_WRITE
        if shape == "fua":
            flags = p.CMD_FLAG_FUA
        elif shape == "read":
            kind = p.CMD_READ
        elif shape == "unaligned":
            offset += draw(st.integers(1, BLOCK - 1))
        elif shape == "past-end":
            offset = SIZE - BLOCK
            length = 2 * BLOCK
        elif shape == "empty":
            length = 0
        elif shape == "big":
            length = MAX_TEST_LENGTH + BLOCK
        elif shape == "magic":
            magic = p.REQUEST_MAGIC ^ 1
        parts.append(request(kind, offset, length, handle + 1, flags, magic))
        if kind == p.CMD_WRITE:
            parts.append(draw(st.binary(min_size=length, max_size=length)))
    stream = b"".join(parts)
    return stream[: draw(st.integers(0, len(stream)))] if draw(st.booleans()) else stream


def model(buffer: bytes, start: int, max_count: int, calls: Calls, image: bytearray) -> tuple[int, bytes]:
    """What a run must do: the end, the replies, and (through `calls`, `image`) its effects."""
    at = start
    run: list[tuple[int, int, int, bytes]] = []  # handle, offset, length, payload
    while len(run) < max_count and len(buffer) - at >= p.REQUEST.size:
        magic, flags, kind, handle, offset, length = p.REQUEST.packer.unpack_from(buffer, at)
        if magic != p.REQUEST_MAGIC or flags or kind != p.CMD_WRITE:
            break
        if not 0 < length <= MAX_TEST_LENGTH or offset % BLOCK or length % BLOCK or offset + length > SIZE:
            break
        payload = buffer[at + p.REQUEST.size : at + p.REQUEST.size + length]
        if len(payload) < length:
            break
        run.append((handle, offset, length, payload))
        at += p.REQUEST.size + length
    if not run:
        return start, b""
    try:
        calls.intent([(offset, length) for _handle, offset, length, _payload in run])
    except Refused:
        return start, b""
    for _handle, offset, length, payload in run:
        image[offset : offset + length] = payload
    try:
        taken = calls.submit([(offset, payload) for _handle, offset, _length, payload in run])
    except Refused:
        taken = 0
    end = start + sum(p.REQUEST.size + length for _handle, _offset, length, _payload in run[:taken])
    return end, b"".join(p.SIMPLE_REPLY.pack(p.SIMPLE_REPLY_MAGIC, 0, handle) for handle, *_ in run[:taken])


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    path = tmp_path / "image"
    path.write_bytes(bytes(SIZE))
    return path


def run(path: Path, buffer: bytearray, start: int, max_count: int, calls: Calls) -> tuple[int, bytes]:
    assert serve_writes is not None
    fd = os.open(path, os.O_RDWR)
    try:
        return serve_writes(buffer, start, fd, BLOCK, SIZE, MAX_TEST_LENGTH, max_count, calls.intent, calls.submit)
    finally:
        os.close(fd)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stream=streams(),
    junk=st.binary(max_size=40),
    max_count=st.integers(0, 10),
    refuse_intent=st.none() | st.integers(0, 6),
    refuse_submit=st.none() | st.integers(0, 6),
)
def test_a_run_serves_exactly_what_the_model_serves(
    image_path: Path, stream: bytes, junk: bytes, max_count: int, refuse_intent: int | None, refuse_submit: int | None
) -> None:
    image_path.write_bytes(bytes(SIZE))
    buffer = bytearray(junk + stream)
    expected_calls = Calls(refuse_intent, refuse_submit)
    expected_image = bytearray(SIZE)
    expected = model(bytes(buffer), len(junk), max_count, expected_calls, expected_image)

    calls = Calls(refuse_intent, refuse_submit)
    assert run(image_path, buffer, len(junk), max_count, calls) == expected
    assert calls.intents == expected_calls.intents
    assert calls.submits == expected_calls.submits
    assert image_path.read_bytes() == expected_image
    assert buffer == junk + stream  # the buffer is read, never changed


def test_replies_echo_each_handle_byte_for_byte(image_path: Path) -> None:
    handles = [0, 1, 0xFFFF_FFFF_FFFF_FFFF, 0x0102_0304_0506_0708]
    buffer = bytearray()
    for number, handle in enumerate(handles):
        buffer += request(p.CMD_WRITE, number * BLOCK, BLOCK, handle) + bytes([number]) * BLOCK
    end, replies = run(image_path, buffer, 0, 10, Calls())
    assert end == len(buffer)
    assert [struct.unpack_from(">IIQ", replies, 16 * i) for i in range(len(handles))] == [
        (p.SIMPLE_REPLY_MAGIC, 0, handle) for handle in handles
    ]
    assert image_path.read_bytes()[: 4 * BLOCK] == b"".join(bytes([n]) * BLOCK for n in range(4))


def test_a_failed_image_write_stops_the_run_before_that_request(image_path: Path) -> None:
    """The Python path then repeats the request and answers the error the write raises there."""
    assert serve_writes is not None
    buffer = bytearray(request(p.CMD_WRITE, 0, BLOCK, 7) + b"x" * BLOCK)
    calls = Calls()
    fd = os.open(image_path, os.O_RDONLY)  # pwrite fails with EBADF
    try:
        end, replies = serve_writes(buffer, 0, fd, BLOCK, SIZE, MAX_TEST_LENGTH, 10, calls.intent, calls.submit)
    finally:
        os.close(fd)
    assert (end, replies) == (0, b"")
    assert calls.intents == [(0, BLOCK)] and calls.submits == []


def test_a_submit_that_takes_no_count_is_an_error(image_path: Path) -> None:
    buffer = bytearray(request(p.CMD_WRITE, 0, BLOCK, 1) + b"x" * BLOCK)

    class Overcounting(Calls):
        def submit(self, writes: list[tuple[int, bytes]]) -> int:
            return len(writes) + 1

    with pytest.raises(ValueError, match="submit returned 2 for a list of 1 writes"):
        run(image_path, buffer, 0, 10, Overcounting())


def test_bad_arguments_are_a_clear_error(image_path: Path) -> None:
    with pytest.raises(ValueError, match="start 9 must lie in the buffer"):
        run(image_path, bytearray(8), 9, 1, Calls())
    with pytest.raises(ValueError, match="max_count within 0..65536"):
        run(image_path, bytearray(8), 0, 1 << 40, Calls())


def test_an_interrupt_in_a_callback_propagates(image_path: Path) -> None:
    """Only Exceptions stop a run quietly; KeyboardInterrupt and SystemExit are not swallowed."""

    def interrupted(writes: list[tuple[int, bytes]]) -> int:
        raise KeyboardInterrupt

    assert serve_writes is not None
    buffer = bytearray(request(p.CMD_WRITE, 0, BLOCK, 1) + b"x" * BLOCK)
    fd = os.open(image_path, os.O_RDWR)
    try:
        with pytest.raises(KeyboardInterrupt):
            serve_writes(buffer, 0, fd, BLOCK, SIZE, MAX_TEST_LENGTH, 10, Calls().intent, interrupted)
    finally:
        os.close(fd)


class FileBackend:
    """A BlockingExport over a file; `written` records the writes that took the Python path."""

    def __init__(self, path: Path) -> None:
        self.name, self.size, self.block_size, self.read_only = "vol1", SIZE, BLOCK, False
        self.inline_io_limit = 0
        self.fd = os.open(path, os.O_RDWR)
        self.written: list[tuple[int, int]] = []

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def write(self, offset: int, data: bytes) -> None:
        self.written.append((offset, len(data)))
        os.pwrite(self.fd, data, offset)

    def zero(self, offset: int, length: int, may_punch: bool) -> None:
        self.write(offset, bytes(length))

    def trim(self, offset: int, length: int) -> None:
        self.zero(offset, length, True)

    def flush(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class InlineFileExport(ThreadedExport):
    """Offers the C path over the backend's file, recording its callbacks."""

    def __init__(self, backend: FileBackend) -> None:
        super().__init__(backend)
        self.file = backend
        self.calls = Calls()

    def inline_write_hooks(self) -> InlineWriteHooks | None:
        return InlineWriteHooks(self.file.fd, BLOCK, MAX_TEST_LENGTH, self.calls.intent, self.calls.submit)


def test_the_server_serves_pipelined_plain_writes_in_c_and_the_rest_in_python(image_path: Path) -> None:
    """One burst on the wire: the C path takes the plain writes, Python the FUA, unaligned and
    past-the-end ones between them; every reply comes back and the image holds every write."""
    export = InlineFileExport(FileBackend(image_path))
    burst = [
        (1, 0, BLOCK, 0),
        (2, BLOCK, 2 * BLOCK, 0),
        (3, 4 * BLOCK, BLOCK, p.CMD_FLAG_FUA),
        (4, 5 * BLOCK, BLOCK, 0),
        (5, 6 * BLOCK + 7, BLOCK, 0),
        (6, SIZE - BLOCK, 2 * BLOCK, 0),
        (7, 9 * BLOCK, BLOCK, 0),
    ]
    with ExportThread(export) as thread:
        sock = open_export(thread.port)
        try:
            sock.sendall(
                b"".join(
                    request(p.CMD_WRITE, offset, length, handle, flags) + bytes([handle]) * length
                    for handle, offset, length, flags in burst
                )
            )
            answers = dict(read_reply(sock)[::-1] for _ in burst)
        finally:
            sock.close()
    assert answers == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: p.ENOSPC, 7: 0}
    assert [offset for offset, _ in export.calls.submits] == [0, BLOCK, 5 * BLOCK, 9 * BLOCK]
    assert export.file.written == [(4 * BLOCK, BLOCK), (6 * BLOCK + 7, BLOCK)]
    image = image_path.read_bytes()
    for handle, offset, length, _ in burst[:5] + burst[6:]:
        assert image[offset : offset + length] == bytes([handle]) * length, handle
