"""Fuzzing the NBD server with malformed raw-socket clients (hypothesis), under attack.

Two servers run for the whole module: the generic core server over an in-memory export, and the
NBD tracker's tracking export (the production front end) over a raw image, both with small
limits (LIMITS). While hypothesis drives malformed conversations, `adversaries.Adversaries`
keep clients that are silent, send their handshake a byte at a time, sit idle after the
handshake, or stall half-way through a 32 MiB WRITE; each must be closed by the timeout meant
for it (or, idle, kept), and none may hinder anyone else.

After every malformed conversation the server must have answered with an NBD error or closed
only that connection: a client connected before the fuzzing started and a fresh client both
still read back what they write; every REAL_CLIENT_EVERY probes, qemu-io writes and reads back a
pattern and nbdinfo reads the export's size. The server runs in this process, so its memory is
this process's VmRSS: it must stay within RSS_BOUND of what it was before the fuzzing and the
adversaries began (three half-sent WRITEs would hold 96 MiB without the server's budget).

CI runs a modest number of examples; `TIDEMARK_FUZZ_EXAMPLES=2000 pytest -m fuzz` is a long run.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.producers.tracker_double import RecordingTracker
from tidemark.core.nbd import protocol as p
from tidemark.core.nbd.connection import REQUEST_CHARGE
from tidemark.core.nbd.dispatch import Request, check
from tidemark.core.nbd.export import ThreadedExport
from tidemark.core.nbd.limits import ServerOptions
from tidemark.producers.nbd.server import open_image
from tidemark.producers.nbd.tracking_export import TrackingExport

from . import fuzz_client as fc
from .adversaries import CLOSE_SLACK_S, Adversaries
from .export_thread import ExportThread
from .rawclient import nbd_read, nbd_write, open_export
from .test_core_server import MemoryExport

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("TIDEMARK_FUZZ_EXAMPLES", "40"))
SIZE = 1 << 20
BLOCK = 4096
MEMORY_CASES = max(300, EXAMPLES * 4)
# Room beside one stalled MAX_PAYLOAD WRITE for the probes and the fuzzer's small requests.
SPARE_BUDGET = 2 << 20
LIMITS = ServerOptions(
    handshake_timeout=2.0,
    request_timeout=1.0,
    max_in_flight_bytes=p.MAX_PAYLOAD + REQUEST_CHARGE + SPARE_BUDGET,
)
RSS_BOUND = 64 << 20
REAL_CLIENT_EVERY = 40

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Served:
    """One running server, a bystander connected before any fuzzing, and a probe of both."""

    kind: str
    port: int
    export: str
    size: int
    read_only: bool
    bystander: socket.socket
    url: str
    baseline_rss: int
    tracker: RecordingTracker | None = None
    probes: int = 0

    def assert_serving(self) -> None:
        """The bystander and a fresh client can both write and read back (the server stayed up),
        the server's memory is within RSS_BOUND of its baseline, and now and then real clients
        are served."""
        self.probes += 1
        growth = _rss() - self.baseline_rss
        assert growth < RSS_BOUND, f"VmRSS grew by {growth >> 20} MiB over its baseline ({self.kind} server)"
        if self.probes % REAL_CLIENT_EVERY == 1:
            self.assert_real_clients_served()
        offset = (self.probes * BLOCK) % self.size
        for number, sock in enumerate((self.bystander, open_export(self.port, self.export))):
            data = random.randbytes(BLOCK)
            assert nbd_write(sock, offset, data, handle=10 + number) == 0
            assert nbd_read(sock, offset, BLOCK, handle=20 + number) == (0, data)
            if sock is not self.bystander:
                sock.close()
        if self.tracker is not None:
            with self.tracker._lock:  # the double keeps every call; the fuzzer needs none of them
                self.tracker.calls.clear()
            assert not self.tracker.violations, self.tracker.violations

    def assert_real_clients_served(self) -> None:
        """qemu-io writes a pattern and reads it back (verified); nbdinfo reads the size."""
        pattern = 1 + self.probes % 250
        offset = self.size - BLOCK * (1 + self.probes % 8)
        done = subprocess.run(
            ["qemu-io", "-f", "raw", self.url, "-c", f"write -P {pattern} {offset} {BLOCK}",
             "-c", f"read -P {pattern} {offset} {BLOCK}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0 and "failed" not in output and "read 4096/4096" in output, output
        info = subprocess.run(["nbdinfo", "--size", self.url], capture_output=True, text=True, timeout=120, check=False)
        assert info.returncode == 0 and info.stdout.strip() == str(self.size), info.stdout + info.stderr


@pytest.fixture(scope="module", params=["core", "tracking"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tracker = None
    if request.param == "core":
        thread = ExportThread(ThreadedExport(MemoryExport("mem", read_only=False)), LIMITS)
    else:
        image = tmp_path_factory.mktemp("nbd-fuzz") / "image.raw"
        image.write_bytes(bytes(SIZE))
        tracker = RecordingTracker(SIZE, intents_required=True)
        thread = ExportThread(TrackingExport(tracker, open_image(tracker, image)), LIMITS)
    thread.start()
    bystander = open_export(thread.port, thread.export.name)
    served = Served(
        request.param, thread.port, thread.export.name, SIZE, False, bystander, thread.url(), _rss(), tracker
    )
    served.assert_serving()  # warm up: thread pools, buffers and the real clients reach their working size
    served.baseline_rss = _rss()
    adversaries = Adversaries(thread.port, thread.export.name, LIMITS).start()
    try:
        yield served
        served.assert_real_clients_served()
    finally:
        adversaries.stop()
        bystander.close()
        thread.stop()
    assert not adversaries.violations, adversaries.violations
    ran = set(adversaries.cycles)
    assert {"silent", "slow", "idle", "half-sent"} <= ran, f"not every adversary ran: {adversaries.cycles}"


u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
known_options = st.sampled_from(
    [p.OPT_EXPORT_NAME, p.OPT_ABORT, p.OPT_LIST, p.OPT_INFO, p.OPT_GO, p.OPT_STRUCTURED_REPLY, p.OPT_LIST_META_CONTEXT,
     p.OPT_SET_META_CONTEXT]
)  # fmt: skip
known_commands = st.sampled_from(
    [p.CMD_READ, p.CMD_WRITE, p.CMD_FLUSH, p.CMD_TRIM, p.CMD_WRITE_ZEROES, p.CMD_CACHE, p.CMD_BLOCK_STATUS]
)


@fuzz_settings
@given(client_flags=st.one_of(st.just(3), u32), payload=st.binary(max_size=256))
def test_random_bytes_after_the_greeting(served: Served, client_flags: int, payload: bytes) -> None:
    seen = fc.after_handshake(served.port, client_flags, payload)
    if client_flags & ~p.KNOWN_CLIENT_FLAGS:
        assert seen.closed, "unknown client flags must close the connection"
    served.assert_serving()


@fuzz_settings
@given(
    magic=st.one_of(st.just(p.IHAVEOPT), u64),
    option_code=st.one_of(known_options, u32),
    declared=st.one_of(st.integers(0, 64), st.integers(p.MAX_OPTION_DATA - 2, p.MAX_OPTION_DATA + 2), u32),
    data=st.binary(max_size=96),
)
def test_options_with_wrong_magic_lengths_and_codes(
    served: Served, magic: int, option_code: int, declared: int, data: bytes
) -> None:
    seen = fc.option(served.port, magic, option_code, declared, data)
    if magic != p.IHAVEOPT or declared > p.MAX_OPTION_DATA:
        assert seen.closed, "a wrong option magic or an oversized option must close the connection"
    elif declared > len(data):
        assert not seen.option_errors and not seen.closed, "the server waits for the rest of the option"
    elif declared == len(data) and option_code not in (1, 2, 3, 6, 7, 8, 9, 10):
        assert seen.option_errors == [p.REP_ERR_UNSUP] and not seen.closed
    served.assert_serving()


@fuzz_settings
@given(
    name=st.binary(max_size=40),
    info_types=st.lists(u16, max_size=4),
    declared=st.one_of(st.none(), u32, st.integers(0, 48)),
)
def test_go_with_lying_name_lengths(served: Served, name: bytes, info_types: list[int], declared: int | None) -> None:
    seen = fc.go_with_name(served.port, name, info_types, declared)
    assert not seen.closed, "NBD_OPT_GO is answered, never a reason to close"
    data_length = 4 + len(name) + 2 + 2 * len(info_types)
    if declared is not None and declared + 6 > data_length:
        assert seen.option_errors == [p.REP_ERR_INVALID]
    elif declared is None and name.decode("utf-8", "replace") not in ("", served.export):
        assert seen.option_errors == [p.REP_ERR_UNKNOWN]
    served.assert_serving()


@st.composite
def requests(draw: st.DrawFn) -> tuple[int, int, int, int, int, int, bytes]:
    magic = draw(st.one_of(st.just(p.REQUEST_MAGIC), st.just(p.REQUEST_MAGIC), u32))
    kind = draw(st.one_of(known_commands, known_commands, u16))
    known_flags = st.sampled_from([p.CMD_FLAG_FUA, p.CMD_FLAG_NO_HOLE, p.CMD_FLAG_FAST_ZERO])
    flags = draw(st.one_of(st.just(0), known_flags, u16))
    offset = draw(st.one_of(st.integers(0, SIZE // BLOCK).map(lambda b: b * BLOCK), st.integers(0, SIZE + 8192), u64))
    length = draw(st.one_of(st.integers(0, 4).map(lambda b: b * BLOCK), st.integers(0, 70000), u32))
    payload = b""
    if kind == p.CMD_WRITE:
        cut = draw(st.one_of(st.just(length), st.integers(0, min(length, 1 << 16))))
        payload = bytes(min(cut, 1 << 16))
    handle = draw(u64)
    return magic, flags, kind, handle, offset, length, payload


@fuzz_settings
@given(req=requests())
def test_requests_past_the_end_unknown_commands_and_short_payloads(served: Served, req: tuple) -> None:
    magic, flags, kind, handle, offset, length, payload = req
    # A READ the budget cannot admit beside a stalled WRITE is answered once that one's bytes are
    # released (the request timeout, maybe after other stalled clients): wait that long for it.
    # (A WRITE that large never has its whole payload here: no answer is due.)
    big_read = kind == p.CMD_READ and REQUEST_CHARGE + min(length, p.MAX_PAYLOAD) > SPARE_BUDGET // 2
    wait = CLOSE_SLACK_S if big_read else fc.ANSWER_WAIT_S
    seen = fc.request(served.port, served.export, magic, flags, kind, handle, offset, length, payload, wait)
    if magic != p.REQUEST_MAGIC or kind == p.CMD_DISC:
        assert seen.closed and not seen.replies
    elif kind == p.CMD_WRITE and len(payload) < length:
        assert not seen.replies, "no reply before the whole payload arrived"
    else:
        expected = check(Request(flags, kind, handle, offset, length), served.size, served.read_only)
        if kind == p.CMD_WRITE and length > p.MAX_PAYLOAD:
            expected = p.EINVAL
        answers = {expected}
        if expected == 0 and length > 0 and kind == p.CMD_WRITE_ZEROES and flags & p.CMD_FLAG_FAST_ZERO:
            # ENOTSUP unless the export zeroes without writing zeros: the memory export never can,
            # the tracking export when the range needs no zeros written
            answers = {p.ENOTSUP} if served.kind == "core" else {0, p.ENOTSUP}
        assert [handle for _, handle in seen.replies] == [handle], (seen, answers)
        assert seen.replies[0][0] in answers, (seen, answers)
        assert not seen.closed, "an error reply keeps the connection open"
    served.assert_serving()


@fuzz_settings
@given(payload=st.binary(min_size=1, max_size=512))
def test_random_bytes_after_a_valid_handshake(served: Served, payload: bytes) -> None:
    fc.garbage_in_transmission(served.port, served.export, payload)
    served.assert_serving()


@fuzz_settings
@given(
    kind=st.sampled_from([p.CMD_READ, p.CMD_WRITE, p.CMD_TRIM, p.CMD_WRITE_ZEROES, p.CMD_FLUSH]),
    block=st.integers(0, SIZE // BLOCK - 16),
    blocks=st.integers(1, 16),
    cut=st.integers(0, p.REQUEST.size + 16 * BLOCK),
)
def test_a_client_that_vanishes_mid_request(served: Served, kind: int, block: int, blocks: int, cut: int) -> None:
    fc.vanish_mid_request(served.port, served.export, kind, block * BLOCK, blocks * BLOCK, cut)
    served.assert_serving()


def _random_case(rng: random.Random, served: Served) -> Callable[[], object]:
    """One malformed conversation of any kind, drawn from `rng` (for the memory run)."""
    port, export = served.port, served.export
    choice = rng.randrange(5)
    if choice == 0:
        return lambda: fc.after_handshake(port, rng.choice([3, rng.getrandbits(32)]), rng.randbytes(rng.randrange(64)))
    if choice == 1:
        declared = rng.choice([rng.randrange(64), rng.getrandbits(32)])
        return lambda: fc.option(port, rng.choice([p.IHAVEOPT, rng.getrandbits(64)]), rng.getrandbits(32), declared,
                                 rng.randbytes(min(declared, 64)))  # fmt: skip
    if choice == 2:
        length = rng.choice([BLOCK, 8 * BLOCK, p.MAX_PAYLOAD, p.MAX_PAYLOAD + 1])
        kind = rng.choice([p.CMD_READ, p.CMD_WRITE, p.CMD_TRIM, rng.getrandbits(16)])
        offset = rng.choice([0, SIZE - BLOCK, SIZE, rng.getrandbits(64)])
        payload = bytes(min(length, 1 << 16)) if kind == p.CMD_WRITE else b""
        return lambda: fc.request(port, export, p.REQUEST_MAGIC, 0, kind, rng.getrandbits(64), offset, length, payload)
    if choice == 3:
        return lambda: fc.garbage_in_transmission(port, export, rng.randbytes(rng.randrange(1, 256)))
    kind = rng.choice([p.CMD_WRITE, p.CMD_READ])
    return lambda: fc.vanish_mid_request(
        port, export, kind, 0, rng.choice([BLOCK, p.MAX_PAYLOAD]), rng.randrange(1, 4096)
    )


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_memory_stays_bounded_over_many_malformed_clients(served: Served) -> None:
    """Every probe checks VmRSS against the module's baseline (RSS_BOUND)."""
    rng = random.Random(20240608)
    for number in range(MEMORY_CASES):
        _random_case(rng, served)()
        if number % 25 == 0:
            served.assert_serving()
    served.assert_serving()
