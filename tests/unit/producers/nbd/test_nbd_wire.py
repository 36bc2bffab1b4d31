"""The NBD server on raw sockets: handshake options, error replies, malformed and vanishing clients."""

from __future__ import annotations

import os
import time

import pytest

from tests.unit.core.nbd.rawclient import (
    connect,
    info_request,
    is_closed,
    nbd_read,
    nbd_write,
    open_export,
    option_replies,
    read_reply,
    recv_exact,
    send_option,
    send_request,
)
from tidemark.core.nbd import inline_writes
from tidemark.core.nbd import protocol as p
from tidemark.producers.exceptions import ImageSizeError

from ..tracker_double import RecordingTracker
from .conftest import BLOCK, VOLUME, ServerThread


def test_go_reports_size_flags_and_block_sizes(server) -> None:
    sock = connect(server.port)
    replies = option_replies(sock, p.OPT_GO, info_request(VOLUME, p.INFO_BLOCK_SIZE))
    infos = {p.INFO_TYPE.unpack(data[:2])[0]: data for kind, data in replies if kind == p.REP_INFO}
    _, size, flags = p.INFO_EXPORT_REPLY.unpack(infos[p.INFO_EXPORT])
    assert size == server.tracker.size
    assert flags == p.TRANSMISSION_FLAGS
    wanted = p.TFLAG_CAN_MULTI_CONN | p.TFLAG_SEND_CACHE | p.TFLAG_SEND_FAST_ZERO | p.TFLAG_SEND_WRITE_ZEROES
    assert flags & wanted == wanted
    _, minimum, preferred, maximum = p.INFO_BLOCK_SIZE_REPLY.unpack(infos[p.INFO_BLOCK_SIZE])
    assert (minimum, preferred, maximum) == (1, BLOCK, p.MAX_PAYLOAD)
    assert replies[-1][0] == p.REP_ACK
    assert nbd_read(sock, 0, 512)[0] == 0
    sock.close()


def test_unknown_options_are_unsupported_and_haggling_goes_on(server) -> None:
    sock = connect(server.port)
    assert option_replies(sock, 42) == [(p.REP_ERR_UNSUP, b"")]
    assert option_replies(sock, p.OPT_STARTTLS) == [(p.REP_ERR_UNSUP, b"")]
    listed = option_replies(sock, p.OPT_LIST)
    assert listed[0] == (p.REP_SERVER, p.SERVER_REPLY_NAME_LENGTH.pack(len(VOLUME)) + VOLUME.encode())
    assert listed[-1][0] == p.REP_ACK
    assert option_replies(sock, p.OPT_LIST, b"junk")[-1][0] == p.REP_ERR_INVALID
    assert option_replies(sock, p.OPT_GO, info_request("other"))[-1][0] == p.REP_ERR_UNKNOWN
    assert option_replies(sock, p.OPT_GO, b"\x00\x00\x10\x00")[-1][0] == p.REP_ERR_INVALID
    assert option_replies(sock, p.OPT_INFO, info_request(VOLUME))[-1][0] == p.REP_ACK
    assert option_replies(sock, p.OPT_GO, info_request(""))[-1][0] == p.REP_ACK  # default export
    assert nbd_write(sock, 0, b"x" * BLOCK) == 0
    sock.close()


def test_abort_is_acknowledged_then_closed(server) -> None:
    sock = connect(server.port)
    assert option_replies(sock, p.OPT_ABORT) == [(p.REP_ACK, b"")]
    assert is_closed(sock)
    sock.close()


@pytest.mark.parametrize("no_zeroes", [True, False])
def test_export_name_enters_transmission(server, no_zeroes: bool) -> None:
    flags = p.FLAG_C_FIXED_NEWSTYLE | (p.FLAG_C_NO_ZEROES if no_zeroes else 0)
    sock = connect(server.port, client_flags=flags)
    send_option(sock, p.OPT_EXPORT_NAME, VOLUME.encode())
    size, tflags = p.EXPORT_NAME_REPLY.unpack(recv_exact(sock, p.EXPORT_NAME_REPLY.size))
    assert (size, tflags) == (server.tracker.size, p.TRANSMISSION_FLAGS)
    if not no_zeroes:
        assert recv_exact(sock, p.EXPORT_NAME_PADDING) == bytes(p.EXPORT_NAME_PADDING)
    error, data = nbd_read(sock, 0, 16)
    assert (error, data) == (0, bytes(16))
    sock.close()


def test_export_name_of_another_volume_closes(server) -> None:
    sock = connect(server.port)
    send_option(sock, p.OPT_EXPORT_NAME, b"nope")
    assert is_closed(sock)
    sock.close()


@pytest.mark.parametrize(
    "garbage",
    [
        p.OPTION_HEADER.pack(0x1234, p.OPT_GO, 0),  # wrong option magic
        p.OPTION_HEADER.pack(p.IHAVEOPT, p.OPT_GO, 0xFFFFFFFF),  # option data of 4 GiB
    ],
    ids=["bad-magic", "huge-option"],
)
def test_broken_haggling_closes_only_that_connection(server, garbage: bytes) -> None:
    sock = connect(server.port)
    sock.sendall(garbage)
    assert is_closed(sock)
    sock.close()
    other = open_export(server.port)
    assert nbd_write(other, 0, b"y" * BLOCK) == 0
    other.close()


def test_unknown_client_flags_close_the_connection(server) -> None:
    sock = connect(server.port, client_flags=0x80)
    assert is_closed(sock)
    sock.close()


def test_bad_request_magic_closes_and_others_keep_working(server) -> None:
    sock = open_export(server.port)
    sock.sendall(p.REQUEST.pack(0xDEADBEEF, 0, p.CMD_READ, 1, 0, 512))
    assert is_closed(sock)
    sock.close()
    other = open_export(server.port)
    assert nbd_read(other, 0, 512) == (0, bytes(512))
    other.close()


def test_out_of_range_and_invalid_requests_get_errors_and_the_connection_survives(server) -> None:
    size = server.tracker.size
    sock = open_export(server.port)
    assert nbd_read(sock, size - 512, 1024)[0] == p.EINVAL
    assert nbd_read(sock, 2**63, 512)[0] == p.EINVAL
    assert nbd_write(sock, size - 512, b"z" * 1024) == p.ENOSPC
    send_request(sock, p.CMD_TRIM, 7, size, BLOCK)
    assert read_reply(sock) == (p.ENOSPC, 7)
    send_request(sock, p.CMD_WRITE_ZEROES, 8, size - BLOCK, 2 * BLOCK)
    assert read_reply(sock) == (p.ENOSPC, 8)
    send_request(sock, 99, 9, 0, 512)  # unknown command
    assert read_reply(sock) == (p.EINVAL, 9)
    send_request(sock, p.CMD_READ, 10, 0, 512, flags=1 << 9)  # unknown flag
    assert read_reply(sock) == (p.EINVAL, 10)
    send_request(sock, p.CMD_READ, 11, 0, 0xFFFFFFFF)  # huge read: refused, nothing allocated
    assert read_reply(sock) == (p.EINVAL, 11)
    assert nbd_write(sock, size - BLOCK, b"e" * BLOCK) == 0
    assert nbd_read(sock, size - BLOCK, BLOCK) == (0, b"e" * BLOCK)
    sock.close()
    assert [c.op for c in server.tracker.ops("WRITE", "ZERO", "TRIM")] == ["WRITE"]


def test_oversized_write_payload_is_skipped_and_refused(server) -> None:
    sock = open_export(server.port)
    length = p.MAX_PAYLOAD + 1
    send_request(sock, p.CMD_WRITE, 5, 0, length)
    chunk = bytes(1024 * 1024)
    sent = 0
    while sent < length:
        step = min(len(chunk), length - sent)
        sock.sendall(chunk[:step])
        sent += step
    assert read_reply(sock) == (p.EINVAL, 5)
    assert nbd_write(sock, 0, b"w" * BLOCK) == 0
    sock.close()


def test_client_vanishing_mid_request_leaves_the_server_serving(server) -> None:
    sock = open_export(server.port)
    send_request(sock, p.CMD_WRITE, 1, 0, 64 * 1024, data=b"v" * 1000)
    sock.close()
    half = connect(server.port)
    half.sendall(p.OPTION_HEADER.pack(p.IHAVEOPT, p.OPT_GO, 40)[:10])
    half.close()
    other = open_export(server.port)
    assert nbd_write(other, BLOCK, b"k" * BLOCK) == 0
    assert nbd_read(other, 0, 2 * BLOCK) == (0, bytes(BLOCK) + b"k" * BLOCK)
    other.close()
    assert [(c.op, c.offset) for c in server.tracker.ops("WRITE")] == [("WRITE", BLOCK)]


def test_pipelined_requests_are_all_answered(server) -> None:
    sock = open_export(server.port)
    for handle in range(1, 33):
        send_request(sock, p.CMD_WRITE, handle, handle * BLOCK, BLOCK, data=bytes([handle]) * BLOCK)
    send_request(sock, p.CMD_FLUSH, 100, 0, 0)
    answered: set[int] = set()
    while len(answered) < 33:
        error, handle = read_reply(sock)
        assert error == 0
        answered.add(handle)
    assert answered == set(range(1, 33)) | {100}
    send_request(sock, p.CMD_DISC, 0, 0, 0)
    assert is_closed(sock)
    sock.close()
    image = server.image_bytes()
    assert all(image[h * BLOCK : (h + 1) * BLOCK] == bytes([h]) * BLOCK for h in range(1, 33))
    assert bytes(server.tracker.mirror) == image


def test_reply_waits_for_the_tracker_confirmation(make_server) -> None:
    server = make_server(gated=True)
    sock = open_export(server.port)
    send_request(sock, p.CMD_WRITE, 1, 0, BLOCK, data=b"g" * BLOCK)
    assert server.tracker.submitted.wait(10)
    time.sleep(0.2)  # room for a wrong early reply to arrive
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(1)
    sock.setblocking(True)
    sock.settimeout(10)
    server.tracker.open_gate()
    assert read_reply(sock) == (0, 1)
    sock.close()


def test_tracker_failure_becomes_eio(make_server) -> None:
    server = make_server(fail_submits=True)
    sock = open_export(server.port)
    assert nbd_write(sock, 0, b"f" * BLOCK) == p.EIO
    assert nbd_read(sock, 0, BLOCK) == (0, b"f" * BLOCK)
    sock.close()


def test_fua_and_unaligned_write_publish_the_covering_blocks(server) -> None:
    sock = open_export(server.port)
    assert nbd_write(sock, BLOCK + 100, b"u" * 50, flags=p.CMD_FLAG_FUA) == 0
    sock.close()
    expected = bytes(100) + b"u" * 50 + bytes(BLOCK - 150)
    assert [(c.op, c.offset, c.length) for c in server.tracker.ops("INTENT", "WRITE")] == [
        ("INTENT", BLOCK, BLOCK),
        ("WRITE", BLOCK, BLOCK),
    ]
    assert server.tracker.ops("WRITE")[0].data == expected


def test_image_of_the_wrong_size_is_refused(tmp_path) -> None:
    image = tmp_path / "small.raw"
    image.write_bytes(bytes(BLOCK))
    thread = ServerThread(RecordingTracker(2 * BLOCK), image)
    with pytest.raises(RuntimeError, match="did not start"):
        thread.start()
    assert isinstance(thread.error, ImageSizeError)
    assert str(BLOCK) in str(thread.error) and str(2 * BLOCK) in str(thread.error)


def test_trimmed_ranges_read_back_as_zeros(server) -> None:
    sock = open_export(server.port)
    assert nbd_write(sock, 0, os.urandom(4 * BLOCK)) == 0
    send_request(sock, p.CMD_TRIM, 3, 100, 3 * BLOCK)
    assert read_reply(sock) == (0, 3)
    sock.close()
    image = server.image_bytes()
    assert image[100 : 100 + 3 * BLOCK] == bytes(3 * BLOCK)
    ops = [(c.op, c.offset, c.length) for c in server.tracker.ops("WRITE", "TRIM")][1:]
    assert ops == [("WRITE", 0, BLOCK), ("TRIM", BLOCK, 2 * BLOCK), ("WRITE", 3 * BLOCK, BLOCK)]
    assert bytes(server.tracker.mirror) == image


def test_overlapping_writes_reach_image_and_events_in_the_same_order(make_server) -> None:
    server = make_server(hold_first_submit=True)
    sock = open_export(server.port)
    send_request(sock, p.CMD_WRITE, 1, 0, BLOCK, data=b"1" * BLOCK)
    assert server.tracker.first_submit_held.wait(10)  # write 1 is on the image, not yet published
    send_request(sock, p.CMD_WRITE, 2, 100, 10, data=b"2" * 10)
    time.sleep(0.3)  # room for write 2 to overtake write 1, which the range lock must prevent
    server.tracker.release_first_submit.set()
    assert {read_reply(sock), read_reply(sock)} == {(0, 1), (0, 2)}
    sock.close()
    assert server.image_bytes()[:BLOCK] == b"1" * 100 + b"2" * 10 + b"1" * (BLOCK - 110)
    assert bytes(server.tracker.mirror) == server.image_bytes()


@pytest.mark.skipif(not inline_writes.available(), reason="the C write path was not built")
def test_runs_of_plain_writes_are_shipped_after_their_submits(server) -> None:
    """The C path's runs are shipped on the event loop (`ship_queued`) once per loop pass, after
    the run's submits, so nothing submitted waits for the ship thread's next round."""
    sock = open_export(server.port)
    sock.sendall(
        b"".join(
            p.REQUEST.packer.pack(p.REQUEST_MAGIC, 0, p.CMD_WRITE, handle, handle * BLOCK, BLOCK)
            + bytes([handle]) * BLOCK
            for handle in range(1, 65)
        )
    )
    for _ in range(64):
        assert read_reply(sock)[0] == 0
    tracker = server.tracker
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (tracker.ship_queued_at and tracker.ship_queued_at[-1] == 128):
        time.sleep(0.01)
    writes = [call for call in tracker.calls if call.op == "WRITE"]
    assert len(writes) == 64 and len(tracker.calls) == 128, "each write: one intent, one submit"
    assert tracker.ship_queued_at and tracker.ship_queued_at[-1] == 128, tracker.ship_queued_at
    assert tracker.ship_queued_at == sorted(set(tracker.ship_queued_at)), "one request per run at most"
    assert tracker.ship_queued_at[0] > 0
    send_request(sock, p.CMD_DISC, 0, 0, 0)
    sock.close()
