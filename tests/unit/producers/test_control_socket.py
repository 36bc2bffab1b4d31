"""The tracker's control socket without Kafka: the protocol, a private socket, refusals, and a
client that finds no tracker."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidemark.producers.control_socket import (
    MAX_LINE,
    ControlRequestError,
    ControlServer,
    MarkerRequest,
    format_request,
    parse_request,
    request_marker,
    socket_path,
)
from tidemark.producers.exceptions import TrackerError

labels = st.one_of(st.none(), st.text(min_size=1, max_size=200).filter(lambda t: "\n" not in t and "\r" not in t))


@given(labels)
def test_a_request_round_trips(label: str | None) -> None:
    request = MarkerRequest("REQUESTED", label)
    assert parse_request(format_request(request).rstrip(b"\n")) == request


@pytest.mark.parametrize(
    "line",
    [b"", b"marker", b"marker FLUSH", b"flush REQUESTED", b"marker REQUESTED lbl=x", b"\xff\xfe"],
)
def test_lines_outside_the_protocol_are_refused(line: bytes) -> None:
    with pytest.raises(ControlRequestError):
        parse_request(line)


def test_a_label_with_a_line_break_or_too_long_cannot_be_sent() -> None:
    with pytest.raises(ControlRequestError):
        format_request(MarkerRequest("REQUESTED", "a\nmarker REQUESTED"))
    with pytest.raises(ControlRequestError):
        format_request(MarkerRequest("REQUESTED", "x" * MAX_LINE))


def test_the_server_queues_requests_on_a_private_socket(tmp_path: Path) -> None:
    seen: list[MarkerRequest] = []
    server = ControlServer(tmp_path, seen.append)
    try:
        assert stat.S_IMODE(socket_path(tmp_path).stat().st_mode) == 0o600
        assert request_marker(tmp_path, "before upgrade", timeout=10)
        assert request_marker(tmp_path, None, timeout=10)
        assert seen == [MarkerRequest("REQUESTED", "before upgrade"), MarkerRequest("REQUESTED", None)]
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(socket_path(tmp_path)))
            raw.sendall(b"reboot now\n")
            assert raw.recv(4096).startswith(b"error unknown request")
    finally:
        server.close()
    assert not socket_path(tmp_path).exists()
    assert not request_marker(tmp_path, "late", timeout=10), "no tracker: the caller writes directly"


def test_a_refusal_reaches_the_client_with_its_reason(tmp_path: Path) -> None:
    def refuse(_request: MarkerRequest) -> None:
        raise TrackerError("volume vm1: fenced by generation 4")

    server = ControlServer(tmp_path, refuse)
    try:
        with pytest.raises(ControlRequestError, match="fenced by generation 4"):
            request_marker(tmp_path, "x", timeout=10)
    finally:
        server.close()


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    socket_path(tmp_path).write_bytes(b"left by a killed tracker")
    server = ControlServer(tmp_path, lambda _request: None)
    try:
        assert request_marker(tmp_path, None, timeout=10)
    finally:
        server.close()


def test_a_folder_too_deep_for_a_unix_socket_means_no_tracker_answers(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    with pytest.raises(OSError):
        ControlServer(deep, lambda _request: None)
    assert not request_marker(deep, None, timeout=10)
