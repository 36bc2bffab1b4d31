"""The processor against the real broker: folding, dead letters, kill -9 and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topic_admin import ensure_topics
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec, publish_volume
from tidemark.schemas.codec import default_codec

from .journal import Journal, build_journal, publish

pytestmark = pytest.mark.integration

SIZE = 8 << 20
WAIT_S = 240
READ_S = 60


class Pipeline:
    """One topic prefix, its state dir, and a `tidemark process` subprocess on demand."""

    def __init__(self, bootstrap: str, root: Path) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:12]}"
        self.state = root / self.prefix
        self.state.mkdir(parents=True)
        self.settings = Settings(state_dir=self.state, topic_prefix=self.prefix)
        self.clients = KafkaClients(self.settings, KafkaSettings(bootstrap=bootstrap))
        self.topics = Topics(self.prefix)
        ensure_topics(self.clients, self.topics, self.settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")}
        self.env = env | {
            "TIDEMARK_BOOTSTRAP": bootstrap,
            "TIDEMARK_TOPIC_PREFIX": self.prefix,
            "TIDEMARK_STATE_DIR": str(self.state),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start_processor(self) -> None:
        command = [sys.executable, "-m", "tidemark.cli", "process", "--tick-interval", "0", "--rp-interval", "3600"]
        log = open(self.state / "processor.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        log.close()

    def kill_processor(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        self.process = None

    def log(self) -> str:
        return (self.state / "processor.log").read_text(errors="replace")[-4000:]

    def read(self, topic: str) -> list[tuple[str, dict[str, Any]]]:
        """Every committed event of the topic, in partition order (one volume: one partition)."""
        by_partition: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        for msg in kafka_io.read_topic(self.clients, topic, timeout=READ_S):
            by_partition.setdefault(msg.partition() or 0, []).append(default_codec().decode(msg.value() or b""))
        return [event for partition in sorted(by_partition) for event in by_partition[partition]]

    def wait_for(self, predicate: Any, what: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"the processor exited with {self.process.returncode} waiting for {what}:\n{self.log()}")
            time.sleep(1.0)
        pytest.fail(f"timed out waiting for {what}:\n{self.log()}")

    def close(self) -> None:
        if self.process is not None:
            self.kill_processor(signal.SIGTERM)


@pytest.fixture
def pipelines(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Pipeline] = []

    def make() -> Pipeline:
        made.append(Pipeline(kafka_bootstrap, tmp_path))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close()


def _prepare(pipeline: Pipeline, journal: Journal) -> None:
    publish_volume(pipeline.clients, pipeline.topics, VolumeSpec(journal.volume, SIZE))
    producer = pipeline.clients.producer()
    publish(producer, pipeline.topics.writes, pipeline.settings.partitions, journal)


def _final_rps(pipeline: Pipeline, journal: Journal) -> bool:
    return sum(1 for t, _ in pipeline.read(pipeline.topics.recovery_points) if t == "RecoveryPoint") >= journal.markers


def _changesets_by_id(
    events: list[tuple[str, dict[str, Any]]],
) -> dict[int, tuple[list[dict[str, Any]], dict[str, Any]]]:
    """The last whole emission of each change set (an Extent with index 0 restarts a set)."""
    result: dict[int, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    buffer: dict[int, list[dict[str, Any]]] = {}
    for record_type, record in events:
        if record_type == "Extent":
            if record["index"] == 0:
                buffer[record["changeset_id"]] = []
            buffer.setdefault(record["changeset_id"], []).append(record)
        elif record_type == "ChangeSetSealed":
            result[record["changeset_id"]] = (buffer.pop(record["changeset_id"], []), record)
    return result


def _manifests(events: list[tuple[str, dict[str, Any]]]) -> dict[int, tuple[dict[str, Any], list[tuple[bytes, bytes]]]]:
    """Each point's header and its chunks (bitmap, checksums), as the last whole emission wrote them."""
    result: dict[int, tuple[dict[str, Any], list[tuple[bytes, bytes]]]] = {}
    chunks: dict[int, list[tuple[bytes, bytes]]] = {}
    for record_type, record in events:
        if record_type == "RecoveryPointChunk":
            if record["index"] == 0:
                chunks[record["rp_id"]] = []
            chunks.setdefault(record["rp_id"], []).append((record["bitmap"], record["checksums"]))
        elif record_type == "RecoveryPoint":
            got = chunks.pop(record["rp_id"], [])
            assert len(got) == record["chunk_count"], record
            result[record["rp_id"]] = (record, got)
    return result


def _mirror(changesets: dict[int, tuple[list[dict[str, Any]], dict[str, Any]]]) -> bytearray:
    mirror = bytearray(SIZE)
    for changeset_id in sorted(changesets):
        extents, seal = changesets[changeset_id]
        assert len(extents) == seal["extent_count"]
        for extent in extents:
            mirror[extent["offset"] : extent["offset"] + extent["length"]] = extent["data"]
    return mirror


def test_the_processor_folds_the_journal_into_change_sets_and_recovery_points(pipelines: Any) -> None:
    pipeline = pipelines()
    journal = build_journal("vol-a", SIZE, writes=1500, marker_every=500)
    _prepare(pipeline, journal)
    pipeline.start_processor()
    pipeline.wait_for(lambda: _final_rps(pipeline, journal), "every recovery point")

    changesets = _changesets_by_id(pipeline.read(pipeline.topics.changesets))
    assert sorted(changesets) == list(range(1, len(changesets) + 1)), "change set ids are gap-free"
    assert _mirror(changesets) == journal.image, "the change sets rebuild the volume"
    rps = [r for t, r in pipeline.read(pipeline.topics.recovery_points) if t == "RecoveryPoint"]
    assert [r["rp_id"] for r in rps] == list(range(1, journal.markers + 1))
    assert rps[-1]["seq"] == 1499 and rps[-1]["label"] == "final"
    written = sum(len(v) for k, v, _ in journal.messages if k == b"vol-a")
    shipped = sum(seal["bytes"] for _, seal in changesets.values())
    assert shipped < written, "overwrites within a sub-interval collapse"
    dead = [r for t, r in pipeline.read(pipeline.topics.dead_letters)]
    assert len(dead) == journal.garbage and dead[0]["value"] == b"\xc3\x01garbage"
    assert "fingerprint" in dead[0]["reason"] or "truncated" in dead[0]["reason"]


@pytest.mark.fault
def test_kill_9_and_restart_give_the_same_change_sets_and_recovery_points(pipelines: Any) -> None:
    journal = build_journal("vol-k", SIZE, writes=4000, marker_every=400)
    reference, crashed = pipelines(), pipelines()
    for pipeline in (reference, crashed):
        _prepare(pipeline, journal)
    reference.start_processor()
    crashed.start_processor()
    crashed.wait_for(
        lambda: sum(1 for t, _ in crashed.read(crashed.topics.changesets) if t == "ChangeSetSealed") >= 5,
        "the first change sets",
    )
    crashed.kill_processor()
    crashed.start_processor()
    for pipeline in (reference, crashed):
        pipeline.wait_for(lambda p=pipeline: _final_rps(p, journal), "every recovery point")

    expected = _changesets_by_id(reference.read(reference.topics.changesets))
    got = _changesets_by_id(crashed.read(crashed.topics.changesets))
    assert sorted(got) == sorted(expected)
    for changeset_id, (extents, seal) in expected.items():
        got_extents, got_seal = got[changeset_id]
        assert got_seal["digest"] == seal["digest"] and got_seal["seq_last"] == seal["seq_last"]
        assert [e["offset"] for e in got_extents] == [e["offset"] for e in extents]

    def points(pipeline: Pipeline) -> list[tuple[Any, ...]]:
        manifests = _manifests(pipeline.read(pipeline.topics.recovery_points))
        return [(i, h["seq"], chunks, h["changeset_last"]) for i, (h, chunks) in sorted(manifests.items())]

    assert points(crashed) == points(reference)
    assert _mirror(got) == journal.image


def test_a_group_barrier_cuts_a_point_for_every_member_with_one_barrier_id(pipelines: Any) -> None:
    pipeline = pipelines()
    members = ("grp-a", "grp-b")
    for name in members:
        publish_volume(pipeline.clients, pipeline.topics, VolumeSpec(name, SIZE, group="g1"))
        journal = build_journal(name, SIZE, writes=50, marker_every=1000)
        journal.messages = [m for m in journal.messages if b"garbage" not in m[1]][:-1]  # no marker
        publish(pipeline.clients.producer(), pipeline.topics.writes, pipeline.settings.partitions, journal)
    pipeline.start_processor()
    result = subprocess.run(
        [sys.executable, "-m", "tidemark.cli", "rp", "create", "--group", "g1", "--label", "both"],
        check=False, env=pipeline.env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    def barrier_points() -> list[dict[str, Any]]:
        return [
            r
            for t, r in pipeline.read(pipeline.topics.recovery_points)
            if t == "RecoveryPoint" and r["kind"] == "BARRIER"
        ]

    pipeline.wait_for(lambda: len(barrier_points()) == 2, "a barrier point for each member")
    points = barrier_points()
    assert sorted(p["volume"] for p in points) == list(members)
    assert len({p["barrier_id"] for p in points}) == 1 and {p["group"] for p in points} == {"g1"}
    assert all(p["seq"] == 49 and p["label"] == "both" for p in points)
