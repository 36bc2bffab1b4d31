"""Broker outage (issues 3 and 11): with the broker stopped, NBD writes and flushes still complete
(local ack: at once; kafka ack: the first waits for the delivery timeout, the rest are marked dirty);
once the broker is back (same port, same data) the dirty blocks are published from the image, a
mirror rebuilt from the writes topic equals the image, and every FLUSH marker taken during the
outage is on the topic, in order, after the content of every write acknowledged before it.

Runs against a broker of its own (`local_broker`), never the session's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topic_admin import ensure_topics
from tidemark.core.topics import Topics
from tidemark.localkafka import LocalCluster as LocalBroker

from .nbd_harness import (
    TrackerProcess,
    block_writes,
    check_events,
    check_seqs_increase,
    dirty_blocks,
    first_difference,
    markers,
    qemu_io,
    read_journal,
    rebuild,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.nbd, pytest.mark.fault]

KIB = 1024
MIB = 1024 * KIB
BS = 4096
VOLUME = "disk0"
SIZE = 16 * MIB
DELIVERY_TIMEOUT_MS = 3000
# Liveness, not speed: during the outage only the first write may wait for the delivery timeout,
# every later one is recorded dirty at once. Waiting per write would take far longer than this.
OUTAGE_WRITES = 24
OUTAGE_RUN_LIMIT_S = DELIVERY_TIMEOUT_MS / 1000 + 30
PUBLISH_LIMIT_S = 60.0


class OwnCluster:
    """Topics, clients and a CLI environment bound to this test's own broker."""

    def __init__(self, bootstrap: str, state_dir: Path) -> None:
        self.settings = Settings(state_dir=state_dir, topic_prefix=f"t{uuid.uuid4().hex[:12]}")
        self.clients = KafkaClients(self.settings, KafkaSettings(bootstrap=bootstrap))
        self.topics = Topics(self.settings.topic_prefix)
        ensure_topics(self.clients, self.topics, self.settings)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")} | {
            "TIDEMARK_BOOTSTRAP": bootstrap,
            "TIDEMARK_TOPIC_PREFIX": self.settings.topic_prefix,
            "TIDEMARK_STATE_DIR": str(state_dir),
        }

    def cli(self, *args: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "tidemark.cli", *args], env=self.env, capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"tidemark {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture
def tracker_slot() -> Iterator[list[TrackerProcess]]:
    """Holds the test's tracker so it is killed at teardown (before the broker is stopped)."""
    slot: list[TrackerProcess] = []
    yield slot
    for tracker in slot:
        tracker.kill()


def _writes(first_pattern: int, start: int, count: int) -> list[tuple[int, int, int]]:
    """(offset, length, pattern): unaligned writes 40 KiB apart, each with its own pattern byte."""
    return [(start + i * 40 * KIB + 100, 30 * KIB + 7, first_pattern + i) for i in range(count)]


def _qemu(writes: list[tuple[int, int, int]]) -> list[str]:
    return [f"write -P {pattern} {offset} {length}" for offset, length, pattern in writes]


def _journal_matches(cluster: OwnCluster, image: Path) -> bool:
    writes = block_writes(read_journal(cluster.clients, cluster.topics.writes, VOLUME))
    return rebuild(writes, SIZE) == image.read_bytes()


@pytest.mark.parametrize("ack", ["local", "kafka"])
def test_writes_during_a_broker_outage_are_published_when_it_returns(
    local_broker: LocalBroker, tmp_path: Path, tracker_slot: list[TrackerProcess], ack: str
) -> None:
    bootstrap = local_broker.status().bootstrap
    assert bootstrap is not None
    cluster = OwnCluster(bootstrap, tmp_path / "state")
    cluster.cli("volume", "add", VOLUME, "--size", str(SIZE))
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(SIZE)
    tracker = TrackerProcess(
        cluster.env, VOLUME, image, tmp_path / "logs", 0,
        "--delivery-timeout-ms", str(DELIVERY_TIMEOUT_MS), "--ack", ack,
    )  # fmt: skip
    tracker_slot.append(tracker)
    qemu_io(tracker.uri, _qemu(_writes(1, 0, 8)))
    wait_until(lambda: _journal_matches(cluster, image), PUBLISH_LIMIT_S, "publication before the outage", 1.0)

    local_broker.stop()
    during = _writes(50, 4 * MIB, OUTAGE_WRITES)
    batches = [during[i : i + 6] for i in range(0, len(during), 6)]  # a flush after each batch
    started = time.monotonic()
    qemu_io(tracker.uri, [c for batch in batches for c in [*_qemu(batch), "flush"]], timeout=OUTAGE_RUN_LIMIT_S * 4)
    elapsed = time.monotonic() - started
    assert elapsed < OUTAGE_RUN_LIMIT_S, f"writes during the outage took {elapsed:.1f} s: they block on Kafka"

    local_broker.start()
    wait_until(lambda: _journal_matches(cluster, image), PUBLISH_LIMIT_S, "publication of the outage's writes", 2.0)
    wait_until(lambda: not dirty_blocks(cluster.settings, VOLUME), PUBLISH_LIMIT_S, "an empty dirty bitmap")
    qemu_io(tracker.uri, _qemu(_writes(120, 8 * MIB, 4)))
    assert tracker.stop() == 0, tracker.output()

    events = read_journal(cluster.clients, cluster.topics.writes, VOLUME)
    writes = block_writes(events)
    check_events(writes, SIZE, BS, cluster.settings.extent_bytes)
    check_seqs_increase(writes, gap_free=False)
    epochs = [m["epoch"] for m in markers(events, "EPOCH_START")]
    assert len(epochs) >= 2 and epochs == sorted(set(epochs)), f"EPOCH_START epochs {epochs}"
    final = image.read_bytes()
    mirror = rebuild(writes, SIZE)
    assert mirror == final, first_difference(mirror, final, BS)
    for offset, length, pattern in during:
        assert final[offset : offset + length] == bytes([pattern]) * length

    flushes = [i for i, event in enumerate(events) if event.type == "Marker" and event.record["kind"] == "FLUSH"]
    # qemu-io also flushes as it exits: one marker before the outage, the outage's, then two more.
    assert len(flushes) == len(batches) + 3, f"{len(flushes)} FLUSH markers on the topic for {len(batches)} + 3 flushes"
    for batch_index, position in enumerate(flushes[1 : 1 + len(batches)]):
        before = rebuild(block_writes(events[:position]), SIZE)
        for offset, length, pattern in (w for batch in batches[: batch_index + 1] for w in batch):
            assert before[offset : offset + length] == bytes([pattern]) * length, (
                f"FLUSH marker {batch_index} is on the topic before the write at offset {offset} it follows"
            )
