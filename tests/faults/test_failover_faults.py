"""Issue #13: one primary at a time, under load, on the fault suite's own cluster.

(a) **A failover while the old primary keeps writing.** qemu-io replays a trace through the old
primary's tracker (`--ack kafka`: an acknowledged write is in the journal) while a mirror at a
second site (`dr2`) applies; `tidemark failover --to <point>` (not `--test`) promotes the first
site's mirror in the middle of the writes. Then:
- the old tracker refuses writes (EPERM) within 5 s of the fence: no write it accepted (each is in
  the journal, stamped) is later than 5 s after the generation marker's time;
- 0 acknowledged writes lost: every one is on the old primary's image; every one acknowledged up
  to the failover point is on the promoted copy (it equals the source as it was at the point);
  every one the journal holds before the fence is on `dr2`;
- 0 blocks of the old generation after the fence on any mirror: `dr2` equals the journal replayed
  up to the generation marker, each fenced write is a dead letter, and `verify --rp` of a point
  cut after the fence passes on `dr2`.
(b) **A failback with both sides changed** (parametrised over `--discard primary|mirror`). After a
common point, the old primary changes blocks OLD through its tracker (the mirror applies them);
`failover --reverse --to <point>` reverts them and a tracker serves the promoted copy under the new
generation, which changes blocks NEW (OLD and NEW overlap in CONFLICTS blocks). failback counts the
conflicts (the promoted side is read from the change sets of the new generation), refuses without
`--discard` and touches nothing; with it, both sides end identical, the copy of what it overwrote is
dropped only after the verify, and the old primary, tracked again, replicates to the mirror.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tidemark.core.volumes import lookup_volume
from tidemark.localkafka import LocalCluster
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.reading.topic_reader import read_records
from tidemark.sinks.status import latest_statuses

from ..integration.producers.nbd_harness import payload, read_journal
from ..unit.producers.traces_dir import sample
from .convergence import Converger
from .stack import Component, FaultCluster, Stack, TrackerComponent
from .workload import AckModel, QemuWriter, WriteCommand, run_chunk, trace_commands

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.nbd]

KIB, MIB = 1024, 1024 * 1024
BLOCK = 4 * KIB
SIZE = 16 * MIB
CHUNK = 8
FENCE_LIMIT_S = 5.0
WAIT_S = 120.0
OLD = WriteCommand(-1, 4 * MIB, 64 * KIB, 0xA1)
"""The old primary's change after the common point (blocks 1024-1039)."""
NEW = WriteCommand(-2, 4 * MIB + 32 * KIB, 64 * KIB, 0xB2)
"""The promoted copy's change (blocks 1032-1047)."""
CONFLICTS = 8


@pytest.fixture
def stack(local_broker: LocalCluster, tmp_path: Path) -> Iterator[Stack]:
    cluster = FaultCluster.on(local_broker, tmp_path / "state")
    made = Stack(cluster, "failover0", SIZE, tmp_path, ["--ack", "kafka", "--delivery-timeout-ms", "3000"])
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def components() -> Iterator[list[Component]]:
    """Processes a test starts beside its stack; stopped at teardown."""
    started: list[Component] = []
    yield started
    for component in started:
        component.stop()


def _until(condition: Callable[[], bool], what: str, stack: Stack, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s\n{stack.logs()}"
        time.sleep(0.25)


def _cut(stack: Stack, label: str) -> int:
    """`tidemark rp create`; the point's id once its manifest is published."""
    stack.cluster.cli("rp", "create", "--volume", stack.volume, "--label", label)
    found: list[int] = []

    def published() -> bool:
        found[:] = [rp for rp, manifest in stack.manifests().items() if manifest["label"] == label]
        return bool(found)

    _until(published, f"the manifest of {label!r}", stack)
    return found[0]


def _held(stack: Stack, site: str, rp_id: int) -> Callable[[], bool]:
    def holds() -> bool:
        status = latest_statuses(stack.cluster.clients, stack.cluster.topics, stack.volume).get(site)
        return status is not None and (status["rp_id"] or 0) >= rp_id

    return holds


def _eperm(uri: str | None) -> bool:
    """True when a write through `uri` fails with EPERM (a fenced tracker)."""
    assert uri is not None, "the old primary's tracker is not running"
    args = ["qemu-io", "-f", "raw", "-c", "write -z 0 4k", uri]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    return "Operation not permitted" in done.stdout + done.stderr


def _blocks(write: dict[str, Any]) -> range:
    return range(write["offset"] // BLOCK, (write["offset"] + write["length"]) // BLOCK)


def _replay(writes: list[dict[str, Any]], size: int) -> bytes:
    image = bytearray(size)
    for write in writes:
        image[write["offset"] : write["offset"] + write["length"]] = payload(write)
    return bytes(image)


@dataclasses.dataclass
class Journal:
    """The old primary's journal split at the fence: the first generation marker (no epoch)."""

    fence_at: float  # when the failover wrote the marker (seconds since the epoch)
    admitted: list[dict[str, Any]]
    fenced: list[dict[str, Any]]
    fenced_offsets: set[int]

    @classmethod
    def read(cls, stack: Stack) -> Journal:
        events = read_journal(stack.cluster.clients, stack.cluster.topics.writes, stack.volume)
        fence = next(
            i for i, e in enumerate(events)
            if e.type == "Marker" and e.record["epoch"] is None and e.record["generation"] > 0
        )  # fmt: skip
        writes = [(i, e) for i, e in enumerate(events) if e.type == "BlockWrite"]
        assert all(e.record["generation"] == 0 for _, e in writes), "no writer of the new generation in this case"
        fenced = [e for i, e in writes if i > fence]
        return cls(
            events[fence].record["timestamp"] / 1e6,
            [e.record for i, e in writes if i < fence],
            [e.record for e in fenced],
            {e.offset for e in fenced},
        )


def test_failover_while_the_old_primary_keeps_writing(
    stack: Stack, components: list[Component], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = stack.cluster
    dr2_path = tmp_path / "dr2.img"
    dr2 = Component(cluster, "mirror-dr2", ["mirror", "--volume", stack.volume, "--site", "dr2", "--path",
                                            str(dr2_path)], tmp_path / "logs")  # fmt: skip
    components.append(dr2)
    model = AckModel(SIZE, BLOCK)
    stack.start()
    dr2.start()
    writer = QemuWriter(trace_commands(sample("msr"), "msr", SIZE, BLOCK), stack.tracker.uri, model, CHUNK)
    writer.start()
    try:
        time.sleep(2.0)
        writer.pause()
        point = Converger(stack, model).check("failover point")
        assert point.passed and point.rp_id is not None, f"{point.verify_output}\n{stack.logs()}"
        at_point = stack.image.read_bytes()
        writer.resume()
        time.sleep(2.0)  # the mirror applies sets past the point, which the failover reverts
        failover = cluster.cli("failover", "--volume", stack.volume, "--mirror", str(stack.mirror_path), "--to",
                               str(point.rp_id), "--stop-applier").stdout  # fmt: skip
        time.sleep(FENCE_LIMIT_S + 1.0)  # the writer goes on against the fenced tracker
        writer.pause()
    finally:
        writer.close()
    assert f"at recovery point {point.rp_id}" in failover and "generation 1" in failover, failover
    assert _eperm(stack.tracker.uri()), "the old primary's tracker still accepts writes after the failover"
    stack.tracker.stop()

    journal = Journal.read(stack)
    # --ack kafka: every write the tracker accepted (and so every acknowledged one) is in the journal,
    # stamped with the time the tracker took it
    accepted_after_fence = max(w["timestamp"] for w in journal.admitted + journal.fenced) / 1e6 - journal.fence_at
    assert accepted_after_fence < FENCE_LIMIT_S, f"a write was accepted {accepted_after_fence:.1f} s after the fence"
    assert writer.failed_chunks > 0, "no write was refused after the fence"

    after = _cut(stack, "after the fence")  # an operator's point of the new generation
    _until(_held(stack, "dr2", after), f"dr2 holding rp {after}", stack)
    dr2.stop()
    source, promoted, mirror = stack.image.read_bytes(), stack.mirror_path.read_bytes(), dr2_path.read_bytes()
    fenced_blocks = {b for w in journal.fenced for b in _blocks(w)}
    assert not model.lost_writes(source, lambda _block: False), "acknowledged writes missing on the old primary"
    assert promoted == at_point, "the promoted copy is not the source as it was at the failover point"
    assert not model.lost_writes(mirror, fenced_blocks.__contains__), "acknowledged writes missing on dr2"
    assert mirror == _replay(journal.admitted, SIZE), "dr2 differs from the journal up to the fence"
    letters = [
        r["offset"] for r in read_records(cluster.clients, cluster.topics.dead_letters, "DeadLetter")
        if r["topic"] == cluster.topics.writes and r["volume"] == stack.volume
    ]  # fmt: skip
    assert journal.fenced_offsets <= set(letters), "a fenced write was dropped without a dead letter"
    verify = cluster.cli("verify", "--volume", stack.volume, "--site", "dr2", "--mirror", str(dr2_path),
                         "--rp", str(after), check=False)  # fmt: skip
    assert verify.returncode == 0, f"verify --rp {after} on dr2:\n{verify.stdout}\n{verify.stderr}"
    with capsys.disabled():
        print(
            f"\nfailover while writing: {model.acknowledged} writes acknowledged, {model.unacknowledged} refused "
            f"or in doubt; {len(journal.admitted)} journaled before the fence, {len(journal.fenced)} after it "
            f"(dead-lettered); last write accepted {accepted_after_fence:+.2f} s from the fence; "
            f"{len(set(letters))} dead letters"
        )


@pytest.mark.parametrize("discard", ["primary", "mirror"])
def test_failback_with_both_sides_changed(
    stack: Stack, components: list[Component], tmp_path: Path, discard: str
) -> None:
    cluster = stack.cluster
    model = AckModel(SIZE, BLOCK)
    stack.start()
    writer = QemuWriter(trace_commands(sample("msr"), "msr", SIZE, BLOCK), stack.tracker.uri, model, CHUNK)
    writer.start()
    try:
        time.sleep(2.0)
        writer.pause()
    finally:
        writer.close()
    common = Converger(stack, model).check("common point")
    assert common.passed and common.rp_id is not None, f"{common.verify_output}\n{stack.logs()}"
    uri = stack.tracker.uri()
    assert uri is not None and run_chunk(uri, [OLD]) == [True]
    _until(_held(stack, "default", _cut(stack, "old primary changed")), "the mirror applying OLD", stack)

    failover = cluster.cli("failover", "--volume", stack.volume, "--mirror", str(stack.mirror_path), "--to",
                           str(common.rp_id), "--stop-applier", "--reverse").stdout  # fmt: skip
    assert f"reverted {OLD.length // BLOCK} blocks" in failover, failover
    _until(lambda: _eperm(stack.tracker.uri()), "the old primary's tracker refusing writes", stack, FENCE_LIMIT_S)
    stack.tracker.stop()
    west = dataclasses.replace(cluster, env=cluster.env | {"TIDEMARK_STATE_DIR": str(tmp_path / "west-state")})
    promoted_tracker = TrackerComponent(west, stack.volume, stack.mirror_path, tmp_path / "west-logs",
                                        "--site", "default", "--ack", "kafka")  # fmt: skip
    components.append(promoted_tracker)
    promoted_tracker.start()
    new_uri = promoted_tracker.uri()
    assert new_uri is not None and run_chunk(new_uri, [NEW]) == [True]
    _cut(stack, "promoted copy changed")  # sealed under generation 1: failback reads it from the stream
    promoted_tracker.stop()

    primary_before, promoted_before = stack.image.read_bytes(), stack.mirror_path.read_bytes()
    failback = ["failback", "--volume", stack.volume, "--mirror", str(stack.mirror_path), "--primary",
                str(stack.image)]  # fmt: skip
    refused = cluster.cli(*failback, check=False)
    assert refused.returncode == 6, f"failback did not refuse:\n{refused.stdout}\n{refused.stderr}"
    assert f"{CONFLICTS} blocks of volume {stack.volume!r}" in refused.stderr, refused.stderr
    assert stack.image.read_bytes() == primary_before and stack.mirror_path.read_bytes() == promoted_before

    out = cluster.cli(*failback, "--discard", discard).stdout
    assert f"{CONFLICTS} blocks changed on both sides" in out, out
    found = re.search(r"compared (\d+) blocks, copied (\d+) blocks", out)
    assert found and int(found[1]) == len({*OLD.blocks(BLOCK), *NEW.blocks(BLOCK)}) == int(found[2]), out
    kept = MirrorLayout.of(cluster.settings.state_dir, "default", stack.volume).root
    assert not list(kept.glob("failback-saved*")), "the copy of the overwritten blocks outlived the verify"
    winner = promoted_before if discard == "primary" else primary_before
    assert stack.image.read_bytes() == stack.mirror_path.read_bytes() == winner
    spec = lookup_volume(cluster.clients, cluster.topics, stack.volume)
    assert (spec.generation, spec.primary_site) == (2, None)

    # The old primary is the primary again: tracked, it replicates to the mirror under generation 2.
    after = AckModel.of_image(winner, BLOCK)
    stack.tracker.start()
    stack.mirror.start()
    writer = QemuWriter(trace_commands(sample("msr"), "msr", SIZE, BLOCK), stack.tracker.uri, after, CHUNK)
    writer.start()
    try:
        time.sleep(2.0)
        writer.pause()
    finally:
        writer.close()
    check = Converger(stack, after).check("after failback")
    assert check.passed, f"{check.verify_output}\nlost {sorted(check.lost_on_mirror)[:20]}\n{stack.logs()}"
