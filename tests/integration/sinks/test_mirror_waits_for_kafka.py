"""A mirror started while Kafka cannot be reached waits for it, then mirrors (it used to exit).

The bootstrap address the mirror is given answers nothing at first; then a TCP forwarder starts
on it, in front of the session's real broker, as when the cluster comes up after the mirror's
host. The broker's advertised address takes the client the rest of the way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ...unit.sinks.stream_model import StreamModel
from ..forwarder import Forwarder, unused_port
from .publish import publish_changesets, register

pytestmark = pytest.mark.integration

BS = 4096
BLOCKS = 256
WAIT_LINE = "waiting for Kafka"


def test_a_mirror_started_before_kafka_answers_waits_then_mirrors(tm, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-wait", BLOCKS * BS, block_size=BS, extent_bytes=64 * 1024)
    register(tm.clients, tm.topics, model)
    for n in range(5):
        model.write(n * 16 * BS, os.urandom(16 * BS))
        publish_changesets(tm.clients, tm.topics, model.volume, model.seal())
    host, broker_port = tm.kafka.bootstrap.split(",")[0].rsplit(":", 1)
    port = unused_port()
    mirror = tmp_path / "mirror.img"
    log = tmp_path / "mirror.log"
    env = tm.env | {"TIDEMARK_BOOTSTRAP": f"127.0.0.1:{port}"}
    command = [sys.executable, "-m", "tidemark.cli", "mirror", "--volume", model.volume, "--path", str(mirror),
               "--exit-when-idle", "3"]  # fmt: skip
    with log.open("w") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    forwarder = None
    try:
        deadline = time.monotonic() + 60
        while WAIT_LINE not in log.read_text() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert child.poll() is None, f"the mirror exited while Kafka was unreachable:\n{log.read_text()}"
        assert WAIT_LINE in log.read_text()
        forwarder = Forwarder(port, (host, int(broker_port)))
        assert child.wait(120) == 0, log.read_text()
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        if forwarder is not None:
            forwarder.close()
    text = log.read_text()
    assert "Kafka answered after" in text
    assert "now at change set 5" in text, text
    assert mirror.read_bytes() == bytes(model.image)


def test_a_mirror_waiting_for_kafka_stops_at_once_on_sigterm(tm, tmp_path: Path) -> None:  # noqa: ANN001
    log = tmp_path / "mirror.log"
    env = tm.env | {"TIDEMARK_BOOTSTRAP": f"127.0.0.1:{unused_port()}"}
    command = [sys.executable, "-m", "tidemark.cli", "mirror", "--volume", "vol-none", "--path",
               str(tmp_path / "mirror.img")]  # fmt: skip
    with log.open("w") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while WAIT_LINE not in log.read_text() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert WAIT_LINE in log.read_text(), log.read_text()
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0, log.read_text()
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
