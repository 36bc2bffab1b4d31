"""A tracker started while Kafka does not answer, through the real broker and qemu-io.

Without `--offline-start` it refuses, naming the flag and the primary its kept record names: only
the operator knows whether the cluster is down or this host is cut off from a cluster that failed
over. With it, a protected host that boots during a Kafka outage serves its disk: the tracker
starts from the registry record its last start kept, acknowledges writes locally and records them
as dirty. Once Kafka answers (a TCP forwarder comes up on the bootstrap address it was given), it
ships them, and the journal rebuilds the image; if a failover moved the primary meanwhile, it
refuses writes from then on. Without a kept record it refuses even with the flag.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidemark.core.volumes import lookup_volume
from tidemark.schemas.codec import default_codec

from ...conftest import CliRunner, TidemarkTest
from ..forwarder import Forwarder, unused_port
from .nbd_harness import TrackerProcess, block_writes, first_difference, qemu_io, read_journal, rebuild, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

MIB = 1 << 20
SIZE = 16 * MIB
BS = 4096
SHIPPED_WITHIN_S = 60.0
# The watch's consumer reconnects with librdkafka's backoff (up to 10 s after failing since its start),
# then reads the registry; on a busy two-core machine that can take a while.
FENCED_WITHIN_S = 60.0


@pytest.fixture
def forwarders() -> Iterator[list[Forwarder]]:
    made: list[Forwarder] = []
    yield made
    for forwarder in made:
        forwarder.close()


def _image(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(SIZE)
    return path


def _first_start(tm: TidemarkTest, cli: CliRunner, volume: str, tmp_path: Path) -> Path:
    """The volume registered and its image made; a start with Kafka up (it keeps the registry
    record), one write, a clean stop. Returns the image."""
    cli("volume", "add", volume, "--size", str(SIZE))
    image = _image(tmp_path / "disk.img")
    tracker = TrackerProcess(tm.env, volume, image, tmp_path / "logs")
    try:
        qemu_io(tracker.uri, ["write -P 1 0 64k", "flush"])
    finally:
        assert tracker.stop() == 0, tracker.output()
    return image


def _unanswered(tm: TidemarkTest) -> tuple[dict[str, str], int]:
    port = unused_port()
    return tm.env | {"TIDEMARK_BOOTSTRAP": f"127.0.0.1:{port}"}, port


def _come_up(tm: TidemarkTest, port: int, forwarders: list[Forwarder]) -> None:
    host, real = tm.env["TIDEMARK_BOOTSTRAP"].split(",")[0].rsplit(":", 1)
    forwarders.append(Forwarder(port, (host, int(real))))


def test_a_tracker_started_while_kafka_is_down_serves_and_ships_once_kafka_answers(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, trackers: list[TrackerProcess], forwarders: list[Forwarder]
) -> None:
    volume = "offline0"
    image = _first_start(tm, cli, volume, tmp_path)

    env, port = _unanswered(tm)
    refused = _start(env, volume, image)
    assert refused.returncode != 0 and "start with --offline-start" in _said(refused), _said(refused)
    assert "the record the last start kept says generation 0 at the original primary" in _said(refused)

    started = time.monotonic()
    tracker = TrackerProcess(env, volume, image, tmp_path / "logs", 0, "--offline-start")
    trackers.append(tracker)
    took = time.monotonic() - started
    data = os.urandom(MIB)
    (tmp_path / "pattern").write_bytes(data)
    qemu_io(tracker.uri, [f"write -s {tmp_path / 'pattern'} 1M 1M", "write -P 9 12M 4k", "flush"])
    assert "Kafka does not answer at start" in tracker.output(), tracker.output()
    assert took < 30, f"the tracker took {took:.0f} s to serve with Kafka down"

    _come_up(tm, port, forwarders)

    def journal_matches() -> bool:
        return (
            bytes(rebuild(block_writes(read_journal(tm.clients, tm.topics.writes, volume)), SIZE)) == image.read_bytes()
        )

    wait_until(journal_matches, SHIPPED_WITHIN_S, "the journal rebuilding the image")
    assert image.read_bytes()[MIB : 2 * MIB] == data
    wait_until(lambda: "the registry still names" in tracker.output(), FENCED_WITHIN_S, "the registry read")
    qemu_io(tracker.uri, ["write -P 3 8M 4k"])  # still the primary: writes go on
    assert tracker.stop() == 0, tracker.output()
    rebuilt = rebuild(block_writes(read_journal(tm.clients, tm.topics.writes, volume)), SIZE)
    assert rebuilt == image.read_bytes(), first_difference(rebuilt, image.read_bytes(), BS)


def test_a_failover_it_could_not_see_fences_it_once_kafka_answers(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, trackers: list[TrackerProcess], forwarders: list[Forwarder]
) -> None:
    volume = "offline1"
    image = _first_start(tm, cli, volume, tmp_path)
    # a failover to dr1 while this host was down: the registry's record moves to generation 1
    record = lookup_volume(tm.clients, tm.topics, volume).to_record() | {"generation": 1, "primary_site": "dr1"}
    producer = tm.clients.producer()
    producer.produce(tm.topics.volumes, key=volume.encode(), value=default_codec().encode("Volume", record))
    assert producer.flush(30) == 0

    env, port = _unanswered(tm)
    tracker = TrackerProcess(env, volume, image, tmp_path / "logs", 0, "--offline-start")
    trackers.append(tracker)
    qemu_io(tracker.uri, ["write -P 5 0 4k"])  # it cannot know yet

    _come_up(tm, port, forwarders)
    answered = time.monotonic()
    fenced = "moved the primary to generation 1 at site 'dr1'"
    while fenced not in tracker.output():
        assert time.monotonic() - answered < FENCED_WITHIN_S, f"not fenced after Kafka answered:\n{tracker.output()}"
        time.sleep(0.5)
    assert not _write_accepted(tracker.uri), "a fenced tracker accepted a write"
    qemu_io(tracker.uri, ["read -P 5 0 4k"])  # reads still work
    assert tracker.stop() == 0, tracker.output()


def test_without_a_kept_record_it_refuses_to_start_and_says_what_to_do(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path
) -> None:
    volume = "offline2"
    cli("volume", "add", volume, "--size", str(SIZE))
    image = _image(tmp_path / "disk.img")
    env, _port = _unanswered(tm)
    plain = _start(env, volume, image)
    assert plain.returncode != 0 and "this host keeps no copy of its registry record" in _said(plain), _said(plain)
    forced = _start(env, volume, image, "--offline-start")
    assert forced.returncode != 0
    assert "start the tracker once while Kafka is reachable" in _said(forced), _said(forced)


def _start(env: dict[str, str], volume: str, image: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`track nbd` run to its exit (a refused start)."""
    command = [sys.executable, "-m", "tidemark.cli", "track", "nbd", "--volume", volume, "--image", str(image),
               "--listen", "127.0.0.1:0", *extra]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _said(result: subprocess.CompletedProcess[str]) -> str:
    """What the command printed, with the console's line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


def _write_accepted(uri: str) -> bool:
    args = ["qemu-io", "-f", "raw", uri, "-c", "write -P 6 4M 4k"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    return result.returncode == 0 and "failed" not in result.stdout + result.stderr
