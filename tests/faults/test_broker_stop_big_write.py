"""Issue 11: every broker stopped in the middle of a large QD32 write (`--ack local`), then started:
the write never stalls, 0 acknowledged writes are lost, the mirror ends identical, and the
tracker's resident memory stays bounded throughout.

fio (nbd engine, libnbd) writes `TIDEMARK_FAULT_BIG_WRITE_MIB` (default 256; the issue's figure is
4096) of crc32c-verifiable 64 KiB blocks sequentially at queue depth 32 through
`tidemark track nbd --ack local`. Once a quarter of it is acknowledged, the whole cluster stops;
it starts again once fio has gone on writing for a while against no broker at all (the tracker
is then ahead: blocks go to its dirty bitmap, not to memory), or after `OUTAGE_MAX_S`. fio must
finish with success. The pipeline then converges (the dirty bitmap drained from the image, a
recovery point held by the mirror, `verify --source` identical), and fio's `--verify_only` pass
reads every block back through the tracker and from the mirror image. A thread samples the
tracker's VmRSS every 0.1 s from its start to the end of the check.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tidemark.localkafka import LocalCluster

from .convergence import CONVERGE_TIMEOUT_S, Converger
from .fio_reports import completed_write_bytes, verify_pass
from .stack import Stack, local_ack_stack

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.nbd]

MIB = 1024 * 1024
VOLUME = "bigwrite0"
SIZE = int(os.environ.get("TIDEMARK_FAULT_BIG_WRITE_MIB", "256")) * MIB
BS = 64 * 1024
DEPTH = 32
RSS_LIMIT_BYTES = 300 * 1000 * 1000
OUTAGE_MIN_S = 6.0
"""Longer than the tracker's delivery timeout (3 s here), so it gives up on the link and goes ahead."""
OUTAGE_MAX_S = 30.0
FIO_TIMEOUT_S = 900.0
SLOWEST_REPLICATION_BYTES_PER_S = 10 * MIB


class RssSampler:
    """The peak VmRSS of whichever process `pid()` names, sampled every 0.1 s on a thread."""

    def __init__(self, pid: Callable[[], int | None]) -> None:
        self._pid = pid
        self.peak = 0
        self.samples = 0
        self.phases: dict[str, int] = {"start": 0}
        self._phase = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mark(self, phase: str) -> None:
        """Samples from now on count to `phase`'s peak."""
        self._phase = phase
        self.phases.setdefault(phase, 0)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            pid = self._pid()
            if pid is None:
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # between a kill and a restart
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    value = int(line.split()[1]) * 1024
                    self.peak = max(self.peak, value)
                    self.phases[self._phase] = max(self.phases[self._phase], value)
                    self.samples += 1


@pytest.fixture
def stack(local_broker: LocalCluster, tmp_path: Path) -> Iterator[Stack]:
    with local_ack_stack(local_broker, tmp_path, VOLUME, SIZE) as made:
        yield made


def _job(target: list[str], *extra: str) -> list[str]:
    return [
        "fio", "--name=bigwrite", *target, "--rw=write", f"--bs={BS}", f"--size={SIZE}", f"--iodepth={DEPTH}",
        "--verify=crc32c", "--verify_fatal=1", "--thread", *extra,
    ]  # fmt: skip


def _completed(report: Path) -> int:
    return completed_write_bytes(report.read_text(errors="replace"))


def _wait_for(condition: Callable[[], bool], fio: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if fio.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_broker_stop_during_a_large_qd32_write_loses_nothing_in_bounded_memory(stack: Stack, tmp_path: Path) -> None:
    workdir = tmp_path / "fio"
    workdir.mkdir()
    report = workdir / "report.json"
    broker = stack.cluster.broker

    def tracker_pid() -> int | None:
        process = stack.tracker.process
        return process.pid if process is not None else None

    with RssSampler(tracker_pid) as rss:
        stack.start()
        uri = stack.tracker.uri()
        assert uri is not None
        with report.open("wb") as out:
            fio = subprocess.Popen(
                _job(["--ioengine=nbd", f"--uri={uri}"], "--do_verify=0", "--end_fsync=1", "--output-format=json",
                     "--status-interval=1"),
                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        try:
            assert _wait_for(lambda: _completed(report) >= SIZE // 4, fio, FIO_TIMEOUT_S), (
                f"fio ended before a quarter was written:\n{report.read_text()[-3000:]}\n{stack.logs()}"
            )
            stopped_at, before_outage = time.monotonic(), _completed(report)
            rss.mark("outage")
            broker.stop()
            time.sleep(OUTAGE_MIN_S)
            _wait_for(lambda: _completed(report) >= before_outage + SIZE // 4, fio, OUTAGE_MAX_S - OUTAGE_MIN_S)
            during_outage = _completed(report) - before_outage
            outage_s = time.monotonic() - stopped_at
            broker.start()
            rss.mark("restarted")
            returncode = fio.wait(FIO_TIMEOUT_S)
        finally:
            if fio.poll() is None:
                fio.kill()
                fio.wait()
        assert returncode == 0, f"fio failed through the tracker:\n{report.read_text()[-3000:]}\n{stack.logs()}"
        assert during_outage > 0, (
            f"no write completed in {outage_s:.1f} s without a broker: the write path stalled\n{stack.logs()}"
        )
        rss.mark("fio ended")
        timeout = CONVERGE_TIMEOUT_S + SIZE / SLOWEST_REPLICATION_BYTES_PER_S
        check = Converger(stack, None, timeout).check("after-outage")
        assert check.mirror_identical, f"{check.label}: the mirror differs\n{check.verify_output}\n{stack.logs()}"
        assert "tracker" not in check.restarted, f"the tracker exited during the outage:\n{stack.logs()}"

    assert rss.samples > 0, "the tracker's memory was never sampled"
    assert rss.peak <= RSS_LIMIT_BYTES, (
        f"the tracker's resident memory peaked at {rss.peak / 1e6:.0f} MB (limit {RSS_LIMIT_BYTES / 1e6:.0f} MB); "
        f"peak per phase: {_phases(rss)}"
    )
    uri = stack.tracker.uri()
    assert uri is not None
    verify_pass(
        _job(["--ioengine=nbd", f"--uri={uri}"], "--verify_only"),
        workdir,
        "the source (through the tracker)",
        FIO_TIMEOUT_S,
    )
    stack.mirror.stop()
    verify_pass(
        _job(["--ioengine=psync", f"--filename={stack.mirror_path}"], "--verify_only"),
        workdir,
        "the mirror",
        FIO_TIMEOUT_S,
    )
    print(
        f"broker stop during a {SIZE // MIB} MiB QD{DEPTH} write: {during_outage // MIB} MiB acknowledged in "
        f"{outage_s:.1f} s without a broker, tracker peak RSS {rss.peak / 1e6:.0f} MB, "
        f"converged in {check.seconds:.1f} s; peak RSS per phase: {_phases(rss)}"
    )


def _phases(rss: RssSampler) -> str:
    return ", ".join(f"{phase} {peak / 1e6:.0f} MB" for phase, peak in rss.phases.items())
