"""A processor started while Kafka cannot be reached waits for it, then joins its group (it used
to exit, and only a supervisor's restart brought it back)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..forwarder import Forwarder, unused_port

pytestmark = pytest.mark.integration

WAIT_LINE = "waiting for Kafka"


def _wait_for_line(log: Path, line: str, child: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while line not in log.read_text() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    assert line in log.read_text(), f"no {line!r} (exit code {child.poll()}):\n{log.read_text()[-3000:]}"


def test_a_processor_started_before_kafka_answers_waits_then_takes_its_partitions(tm, tmp_path: Path) -> None:  # noqa: ANN001
    host, broker_port = tm.kafka.bootstrap.split(",")[0].rsplit(":", 1)
    port = unused_port()
    log = tmp_path / "process.log"
    env = tm.env | {"TIDEMARK_BOOTSTRAP": f"127.0.0.1:{port}"}
    command = [sys.executable, "-m", "tidemark.cli", "process", "--tick-interval", "0", "--loglevel", "info"]
    with log.open("w") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    forwarder = None
    try:
        _wait_for_line(log, WAIT_LINE, child)
        assert child.poll() is None, log.read_text()
        forwarder = Forwarder(port, (host, int(broker_port)))
        _wait_for_line(log, "Kafka answered after", child)
        _wait_for_line(log, "state records, re-folded", child, timeout=120)
        child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        if forwarder is not None:
            forwarder.close()
