"""Speed features of the tracking export, driven by real clients: holes (base:allocation block
status), fast zeroing, CACHE and several connections at once (multi-conn)."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from tests.unit.core.nbd.rawclient import (
    connect,
    info_request,
    nbd_write,
    open_export,
    option_replies,
    read_reply,
    read_structured,
    send_request,
)
from tidemark.core.nbd import protocol as p

from .conftest import BLOCK, VOLUME, RunningServer

pytestmark = pytest.mark.nbd

MIB = 1024 * 1024


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{command[0]} failed ({done.returncode}): {done.stdout}{done.stderr}"
    return done.stdout


def with_data_at(server: RunningServer, *extents: tuple[int, int]) -> bytes:
    """Write random data through NBD at each (offset, length); everything else stays a hole."""
    rng = random.Random(1)
    with open_export(server.port) as sock:
        for handle, (offset, length) in enumerate(extents):
            assert nbd_write(sock, offset, rng.randbytes(length), handle=handle) == 0
    return server.image_bytes()


def test_nbdinfo_map_and_qemu_img_map_show_the_holes(make_server) -> None:
    server = make_server(size=16 * MIB)
    with_data_at(server, (4 * MIB, MIB), (9 * MIB, 64 * 1024))
    mapped = [
        (e["offset"], e["length"], e["type"]) for e in json.loads(run("nbdinfo", "--map", "--json", server.url()))
    ]
    hole = p.STATE_HOLE | p.STATE_ZERO
    assert mapped == [
        (0, 4 * MIB, hole),
        (4 * MIB, MIB, 0),
        (5 * MIB, 4 * MIB, hole),
        (9 * MIB, 64 * 1024, 0),
        (9 * MIB + 64 * 1024, 7 * MIB - 64 * 1024, hole),
    ]
    qemu = json.loads(run("qemu-img", "map", "--output=json", "-f", "raw", server.url()))
    data = [(e["start"], e["length"]) for e in qemu if e["data"]]
    assert data == [(4 * MIB, MIB), (9 * MIB, 64 * 1024)]


def test_copies_out_of_the_export_are_equal(make_server, tmp_path: Path) -> None:
    """Structured reads and block status as nbdcopy and qemu-img use them (that they skip the
    holes is shown on a counting export in tests/unit/core/nbd/test_speed_features.py)."""
    server = make_server(size=32 * MIB)
    image = with_data_at(server, (MIB, 2 * MIB), (20 * MIB, MIB))
    for tool in ("nbdcopy", "qemu-img"):
        target = tmp_path / f"{tool}.raw"
        if tool == "nbdcopy":
            target.write_bytes(b"")
            os.truncate(target, 32 * MIB)
            run("nbdcopy", server.url(), str(target))
        else:
            run("qemu-img", "convert", "-f", "raw", "-O", "raw", server.url(), str(target))
        assert target.read_bytes() == image


def test_fast_zero_punches_and_publishes_zero_events(server) -> None:
    with_data_at(server, (0, 64 * 1024))
    with open_export(server.port) as sock:
        send_request(sock, p.CMD_WRITE_ZEROES, 7, 0, 32 * 1024, flags=p.CMD_FLAG_FAST_ZERO)
        assert read_reply(sock) == (0, 7)
        send_request(sock, p.CMD_CACHE, 8, 0, 64 * 1024)
        assert read_reply(sock) == (0, 8)
    assert server.image_bytes()[: 32 * 1024] == bytes(32 * 1024)
    zeros = [(c.offset, c.length) for c in server.tracker.ops("ZERO")]
    assert zeros == [(0, 32 * 1024)]
    assert bytes(server.tracker.mirror) == server.image_bytes()


def test_a_flush_on_one_connection_covers_writes_answered_on_another(server) -> None:
    with open_export(server.port) as writer, open_export(server.port) as flusher:
        assert nbd_write(writer, 0, b"\x5a" * BLOCK) == 0
        send_request(flusher, p.CMD_FLUSH, 9, 0, 0)
        assert read_reply(flusher) == (0, 9)
    calls = [(c.op, c.kind) for c in server.tracker.ops("WRITE", "FLUSH", "MARKER")]
    assert calls == [("WRITE", None), ("FLUSH", None), ("MARKER", "FLUSH")]


def test_nbdcopy_over_four_connections(make_server, tmp_path: Path) -> None:
    server = make_server(size=32 * MIB)
    info = json.loads(run("nbdinfo", "--json", server.url()))
    assert info["exports"][0]["can_multi_conn"] is True
    source = tmp_path / "source.raw"
    source.write_bytes(random.Random(4).randbytes(32 * MIB))
    run("nbdcopy", "--connections=4", "--flush", str(source), server.url())
    assert server.image_bytes() == source.read_bytes()
    assert bytes(server.tracker.mirror) == server.image_bytes()
    assert ("MARKER", "FLUSH") in [(c.op, c.kind) for c in server.tracker.ops("MARKER")]


def test_block_status_needs_the_context_and_answers_in_one_chunk(server) -> None:
    with_data_at(server, (BLOCK, BLOCK))
    sock = connect(server.port)
    assert option_replies(sock, p.OPT_STRUCTURED_REPLY) == [(p.REP_ACK, b"")]
    query = p.BASE_ALLOCATION.encode()
    request = (
        p.META_REQUEST_LENGTH.pack(len(VOLUME)) + VOLUME.encode() + p.META_REQUEST_LENGTH.pack(1)
        + p.META_REQUEST_LENGTH.pack(len(query)) + query
    )  # fmt: skip
    selected = option_replies(sock, p.OPT_SET_META_CONTEXT, request)
    assert selected == [(p.REP_META_CONTEXT, p.META_CONTEXT_REPLY.pack(p.BASE_ALLOCATION_ID) + query), (p.REP_ACK, b"")]
    assert option_replies(sock, p.OPT_GO, info_request(VOLUME))[-1][0] == p.REP_ACK
    send_request(sock, p.CMD_BLOCK_STATUS, 3, 0, 4 * BLOCK)
    flags, kind, handle, payload = read_structured(sock)
    assert (flags, kind, handle) == (p.REPLY_FLAG_DONE, p.REPLY_TYPE_BLOCK_STATUS, 3)
    (context,) = p.BLOCK_STATUS_HEADER.unpack(payload[:4])
    descriptors = [p.BLOCK_DESCRIPTOR.unpack(payload[at : at + 8]) for at in range(4, len(payload), 8)]
    assert context == p.BASE_ALLOCATION_ID
    assert descriptors == [(BLOCK, 3), (BLOCK, 0), (2 * BLOCK, 3)]
    sock.close()
