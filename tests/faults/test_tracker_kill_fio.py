"""Issue 11: kill -9 of the tracker in the middle of a fio run (`--ack local`), then a restart:
0 acknowledged writes lost and an identical mirror.

fio (nbd engine, libnbd) writes crc32c-verifiable blocks through `tidemark track nbd --ack local`,
sequentially at queue depth 16, rate-limited so the kill lands in the middle of the run. fio is
then stopped (SIGKILL if it has not ended: its nbd engine can keep polling the dead connection,
and a CI run saw it ignore SIGINT for 300 s) and the last of the bytes it
completed, i.e. saw acknowledged, in a JSON status report every second; with sequential writes
and at most 16 in flight, every write before the last 16 completed ones' span was acknowledged.
The supervisor starts the tracker again
(it republishes its activity log's regions), the pipeline converges (a recovery point held by the
mirror, `verify --source` identical), and fio's `--verify_only` pass over that prefix checks every
acknowledged write on the source through the tracker and on the mirror image.
"""

from __future__ import annotations

import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidemark.localkafka import LocalCluster

from .convergence import Converger
from .fio_reports import completed_write_bytes, verify_pass
from .stack import Stack, local_ack_stack
from .workload import AckModel

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.nbd]

MIB = 1024 * 1024
VOLUME = "fiokill0"
SIZE = 64 * MIB
FIO_TIMEOUT_S = 300
FIO_GIVE_UP_S = 5
BS = 16 * 1024
DEPTH = 16


@pytest.fixture
def stack(local_broker: LocalCluster, tmp_path: Path) -> Iterator[Stack]:
    with local_ack_stack(local_broker, tmp_path, VOLUME, SIZE) as made:
        yield made


def _job(target: list[str], size: int, *extra: str) -> list[str]:
    """Sequential 16 KiB writes with crc32c verify headers: the same layout for the write run and
    both verify passes."""
    return [
        "fio", "--name=killed", *target, "--rw=write", f"--bs={BS}", f"--size={size}", f"--iodepth={DEPTH}",
        "--verify=crc32c", "--verify_fatal=1", *extra,
    ]  # fmt: skip


def _acknowledged_prefix(fio_output: str) -> int:
    """Bytes from the start that were all acknowledged: sequential writes, at most DEPTH in flight,
    so every write before the last DEPTH completed ones' span is complete."""
    return max(0, completed_write_bytes(fio_output) // BS - DEPTH) * BS


def test_kill_9_of_the_tracker_during_fio_loses_no_acknowledged_write(stack: Stack, tmp_path: Path) -> None:
    stack.start()
    uri = stack.tracker.uri()
    assert uri is not None
    workdir = tmp_path / "fio"
    workdir.mkdir()
    fio = subprocess.Popen(
        _job(["--ioengine=nbd", f"--uri={uri}"], SIZE, "--rate=8m", "--do_verify=0", "--output-format=json",
             "--status-interval=1", "--thread"),  # --thread: a forked job would setsid() and outlive a kill
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(random.uniform(3.5, 5.0))  # fio starts in ~2 s, then 64 MiB at 8 MiB/s: the kill lands mid-run
    assert fio.poll() is None, "fio finished before the kill"
    stack.tracker.kill()
    try:
        output, _ = fio.communicate(timeout=FIO_GIVE_UP_S)
    except subprocess.TimeoutExpired:  # fio's nbd engine can keep polling a dead connection
        fio.kill()  # one process (--thread): its status reports so far hold what it completed
        output, _ = fio.communicate(timeout=FIO_TIMEOUT_S)
    acknowledged = _acknowledged_prefix(output)
    assert 0 < acknowledged < SIZE, f"the kill did not land in the middle of the run:\n{output}"

    check = Converger(stack, AckModel(SIZE, 4096)).check("after-kill")  # restarts the tracker first
    assert "tracker" in check.restarted
    assert check.mirror_identical, f"{check.label}: the mirror differs\n{check.verify_output}\n{stack.logs()}"
    resumed = re.search(r"epoch 2, next seq (\d+)", stack.tracker.output())
    assert resumed is not None and int(resumed[1]) > 0, f"the killed tracker published nothing:\n{stack.logs()}"
    uri = stack.tracker.uri()
    assert uri is not None
    verify_pass(
        _job(["--ioengine=nbd", f"--uri={uri}"], acknowledged, "--verify_only"),
        workdir,
        "the source (through the restarted tracker)",
        FIO_TIMEOUT_S,
    )
    stack.mirror.stop()
    verify_pass(
        _job(["--ioengine=psync", f"--filename={stack.mirror_path}"], acknowledged, "--verify_only"),
        workdir,
        "the mirror",
        FIO_TIMEOUT_S,
    )
