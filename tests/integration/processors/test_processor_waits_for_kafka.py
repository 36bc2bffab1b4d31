"""A processor started while Kafka cannot be reached waits for it, then joins its group (it used
to exit, and only a supervisor's restart brought it back)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from ..forwarder import LateKafka

pytestmark = pytest.mark.integration


def test_a_processor_started_before_kafka_answers_waits_then_takes_its_partitions(tm, tmp_path: Path) -> None:  # noqa: ANN001
    command = [sys.executable, "-m", "tidemark.cli", "process", "--tick-interval", "0", "--loglevel", "info"]
    with LateKafka(tm.kafka.bootstrap, tm.env, command, tmp_path / "process.log") as late:
        late.wait_for_line("waiting for Kafka")
        late.come_up()
        late.wait_for_line("Kafka answered after")
        late.wait_for_line("state records, re-folded", timeout=120)
        late.child.send_signal(signal.SIGTERM)
        assert late.child.wait(60) == 0, late.output()[-3000:]
