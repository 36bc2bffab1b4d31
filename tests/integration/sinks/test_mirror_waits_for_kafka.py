"""A mirror started while Kafka cannot be reached waits for it, then mirrors (it used to exit).

The bootstrap address the mirror is given answers nothing at first; then a TCP forwarder starts
on it, in front of the session's real broker, as when the cluster comes up after the mirror's
host (`LateKafka`). The broker's advertised address takes the client the rest of the way.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from ...unit.sinks.stream_model import StreamModel
from ..forwarder import LateKafka
from .publish import publish_changesets, register

pytestmark = pytest.mark.integration

BS = 4096
BLOCKS = 256


def test_a_mirror_started_before_kafka_answers_waits_then_mirrors(tm, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-wait", BLOCKS * BS, block_size=BS, extent_bytes=64 * 1024)
    register(tm.clients, tm.topics, model)
    for n in range(5):
        model.write(n * 16 * BS, os.urandom(16 * BS))
        publish_changesets(tm.clients, tm.topics, model.volume, model.seal())
    mirror = tmp_path / "mirror.img"
    command = [sys.executable, "-m", "tidemark.cli", "mirror", "--volume", model.volume, "--path", str(mirror),
               "--exit-when-idle", "3"]  # fmt: skip
    with LateKafka(tm.kafka.bootstrap, tm.env, command, tmp_path / "mirror.log") as late:
        late.wait_for_line("waiting for Kafka")
        assert late.child.poll() is None, f"the mirror exited while Kafka was unreachable:\n{late.output()}"
        late.come_up()
        assert late.child.wait(120) == 0, late.output()
        text = late.output()
    assert "Kafka answered after" in text
    assert "now at change set 5" in text, text
    assert mirror.read_bytes() == bytes(model.image)


def test_a_mirror_waiting_for_kafka_stops_at_once_on_sigterm(tm, tmp_path: Path) -> None:  # noqa: ANN001
    command = [sys.executable, "-m", "tidemark.cli", "mirror", "--volume", "vol-none", "--path",
               str(tmp_path / "mirror.img")]  # fmt: skip
    with LateKafka(tm.kafka.bootstrap, tm.env, command, tmp_path / "mirror.log") as late:
        late.wait_for_line("waiting for Kafka")
        late.child.send_signal(signal.SIGTERM)
        assert late.child.wait(30) == 0, late.output()
