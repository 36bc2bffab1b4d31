"""Server limits (ServerOptions): handshake and idle timeouts, the connection limit, the
server-wide byte budget, the shutdown grace against clients that never read, unix sockets."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.core.nbd.export_thread import ExportThread
from tests.unit.core.nbd.rawclient import (
    connect,
    is_closed,
    nbd_read,
    nbd_write,
    open_export,
    read_reply,
    recv_exact,
    send_request,
)
from tidemark.core.nbd import protocol as p
from tidemark.core.nbd.export import ThreadedExport
from tidemark.core.nbd.limits import ServerOptions, SharedBudget
from tidemark.core.nbd.server import _is_loopback

from .test_core_server import SIZE, MemoryExport


def serve(**options: object) -> ExportThread:
    return ExportThread(ThreadedExport(MemoryExport("mem", read_only=False)), ServerOptions(**options))  # type: ignore[arg-type]


def test_a_client_silent_in_the_handshake_is_closed() -> None:
    with serve(handshake_timeout=0.5) as thread:
        sock = connect(thread.port)  # greeting read, client flags sent, then nothing
        assert is_closed(sock, timeout=5)
        sock.close()
        fresh = open_export(thread.port, "mem")
        assert nbd_read(fresh, 0, 16)[0] == 0
        fresh.close()


def test_an_idle_connection_is_closed_and_a_busy_one_is_not() -> None:
    with serve(idle_timeout=1.0) as thread:
        idle = open_export(thread.port, "mem")
        busy = open_export(thread.port, "mem")
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert nbd_write(busy, 0, b"x" * 512) == 0
            time.sleep(0.2)
        assert is_closed(idle, timeout=1)
        assert nbd_read(busy, 0, 1) == (0, b"x")
        idle.close()
        busy.close()


def test_clients_past_the_connection_limit_are_refused_cleanly() -> None:
    with serve(max_connections=2) as thread:
        first, second = open_export(thread.port, "mem"), open_export(thread.port, "mem")
        third = socket.create_connection(("127.0.0.1", thread.port), timeout=5)
        assert is_closed(third, timeout=5), "the third client must be closed before any greeting"
        third.close()
        first.close()
        time.sleep(0.3)
        again = open_export(thread.port, "mem")
        assert nbd_write(again, 0, b"y" * 512) == 0 and nbd_read(second, 0, 1) == (0, b"y")
        again.close()
        second.close()


def test_a_small_server_budget_still_serves_pipelined_requests_on_two_connections() -> None:
    with serve(max_in_flight_bytes=16 * 1024) as thread:
        socks = [open_export(thread.port, "mem") for _ in range(2)]
        for sock in socks:
            for handle in range(20):
                send_request(sock, p.CMD_READ, handle, handle * 8192, 8192)
        for sock in socks:
            for _ in range(20):
                error, handle = read_reply(sock)
                assert error == 0
                recv_exact(sock, 8192)
            sock.close()


def test_shutdown_ends_within_the_grace_whatever_clients_do() -> None:
    thread = serve(shutdown_grace=1.0).start()
    stubborn = open_export(thread.port, "mem")
    stubborn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for handle in range(64):  # 64 MiB of replies nobody reads
        send_request(stubborn, p.CMD_READ, handle, 0, SIZE)
    time.sleep(0.5)
    started = time.monotonic()
    thread.stop()
    assert time.monotonic() - started < 4
    stubborn.close()


def test_shared_budget_calls_back_the_connections_it_turned_away() -> None:
    budget = SharedBudget(100)
    woken: list[str] = []
    assert budget.try_acquire(80, lambda: woken.append("a"))
    assert not budget.try_acquire(40, lambda: woken.append("b"))
    budget.release(80)
    assert woken == ["b"]
    assert budget.try_acquire(40, lambda: woken.append("c"))


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                ("0.0.0.0", False), ("192.168.1.4", False),
                                                ("host.example", False)])  # fmt: skip
def test_loopback_detection_for_the_tls_warning(host: str, loopback: bool) -> None:
    assert _is_loopback(host) == loopback


def test_listening_beyond_loopback_without_tls_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tidemark.core.nbd.server"):
        with serve():
            pass
        assert not [r for r in caplog.records if "beyond loopback" in r.getMessage()]
        with ExportThread(ThreadedExport(MemoryExport("mem", read_only=False)), host="0.0.0.0"):
            pass
    warnings = [r.getMessage() for r in caplog.records if "beyond loopback without TLS" in r.getMessage()]
    assert len(warnings) == 1 and "'mem'" in warnings[0], caplog.text


SERVE_IN_A_PROCESS = """
from tests.unit.core.nbd.test_core_server import MemoryExport
from tidemark.core.nbd.export import ThreadedExport
from tidemark.core.nbd.server import serve_export
serve_export(ThreadedExport(MemoryExport("mem", read_only=False)), "127.0.0.1", 0,
             ready=lambda host, port: print(port, flush=True))
"""


def test_sigterm_ends_a_serving_process_within_5s_while_a_client_reads_no_replies() -> None:
    root = Path(__file__).resolve().parents[4]
    child = subprocess.Popen([sys.executable, "-c", SERVE_IN_A_PROCESS], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        stubborn = open_export(port, "mem")
        stubborn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for handle in range(64):  # 64 MiB of replies nobody reads
            send_request(stubborn, p.CMD_READ, handle, 0, SIZE)
        time.sleep(0.5)
        started = time.monotonic()
        child.send_signal(signal.SIGTERM)
        child.wait(30)
        took = time.monotonic() - started
        assert took < 5, f"the server took {took:.1f} s to end after SIGTERM"
        stubborn.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


@pytest.mark.nbd
def test_unix_socket_served_to_nbdinfo_and_qemu_io(tmp_path: Path) -> None:
    path = tmp_path / "nbd.sock"
    with ExportThread(ThreadedExport(MemoryExport("mem", read_only=False)), host=f"unix:{path}") as thread:
        assert thread.host == f"unix:{path}"
        url = f"nbd+unix:///mem?socket={path}"
        done = subprocess.run(["qemu-io", "-f", "raw", url, "-c", "write -P 0x33 0 4096"],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        info = subprocess.run(["nbdinfo", "--json", url], capture_output=True, text=True, timeout=60, check=False)
        assert info.returncode == 0 and '"export-size": 1048576' in info.stdout, info.stdout + info.stderr
        assert thread.export.name == "mem"


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.nbd
def test_half_sent_writes_are_dropped_and_real_clients_served_throughout() -> None:
    budget = 4 * p.MAX_PAYLOAD
    with serve(request_timeout=1.5, max_in_flight_bytes=budget) as thread:
        before = _rss()
        stalled = []
        for handle in range(12):  # each claims a 32 MiB write, sends 1 byte of it, then nothing
            sock = open_export(thread.port, "mem")
            send_request(sock, p.CMD_WRITE, handle, 0, p.MAX_PAYLOAD, data=b"\x01")
            stalled.append(sock)
        time.sleep(0.5)
        assert _rss() - before < budget + (64 << 20), "stalled payloads grew past the server budget"
        done = subprocess.run(["qemu-io", "-f", "raw", thread.url(), "-c", "write -P 0x44 0 4096"],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0 and "failed" not in done.stdout + done.stderr, done.stdout + done.stderr
        assert all(is_closed(sock, timeout=5) for sock in stalled)
        for sock in stalled:
            sock.close()
