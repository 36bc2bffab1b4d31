"""Issue #8 part 1: crash anywhere, lose nothing.

A real trace sample (MSR Cambridge hm_0; a generated MSR-format trace where the sample is missing,
see tests/unit/producers/traces_dir.py) replays through qemu-io into `tidemark track nbd`, then
`tidemark process`, then `tidemark mirror`, all on a cluster of the test's own (TIDEMARK_TEST_BROKERS
nodes). At random moments a fault hits: `kill -9` of the tracker, the processor or the mirror, a
clean restart of the cluster, `kill -9` of every node and a start, and on several nodes `kill -9`
of one node and its start (kinds in random order, each once per round). Writes
go on while the component is down and after it is back; then the pipeline must converge (see
`convergence.py`): every stage running, the tracker's dirty bitmap drained, a recovery point cut
and held by the mirror, `verify --source` finding the mirror identical to the source, and every
write qemu-io saw acknowledged on the mirror (or in the tracker's pending resync set). At the end,
with the mirror stopped, `verify` checks the last and the first recovery point against their
manifests.

The run prints its counts: faults injected (per kind), mirrors differing, acknowledged writes lost.

CI runs the short pass, one round (each fault kind once: 6 faults on three nodes), with the rest of
the suite. The full pass, 100 faults:

    TIDEMARK_FAULTS=100 TIDEMARK_TEST_BROKERS=3 scripts/test -m fault tests/faults

`TIDEMARK_FAULT_SEED=<n>` replays the same fault schedule (the seed is printed with the counts).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tidemark.localkafka import LocalCluster

from ..unit.producers.traces_dir import sample
from .convergence import Check, Converger
from .stack import FaultCluster, Stack
from .workload import AckModel, QemuWriter, trace_commands

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.nbd]

KIB, MIB = 1024, 1024 * 1024
BLOCK = 4 * KIB
VOLUME = "faulty0"
VOLUME_SIZE = 16 * MIB
CHUNK = 8
"""qemu-io commands per process: small, so a fault often lands in the middle of one."""
KINDS = ("tracker", "processor", "mirror", "broker-restart", "broker-kill")
CLUSTER_KINDS = ("broker-kill-one",)
"""On a cluster of several nodes: kill -9 of one node (the others keep serving), then its start."""


def kinds_for(brokers: int) -> tuple[str, ...]:
    return KINDS + CLUSTER_KINDS if brokers > 1 else KINDS


@dataclass
class Tally:
    seed: int
    kinds: tuple[str, ...]
    faults: Counter[str] = field(default_factory=Counter)
    checks: list[Check] = field(default_factory=list)
    final_differing: list[str] = field(default_factory=list)

    @property
    def mirrors_differing(self) -> int:
        return sum(not c.mirror_identical for c in self.checks) + len(self.final_differing)

    @property
    def writes_lost(self) -> int:
        lost: set[int] = set()
        for check in self.checks:
            lost |= check.lost_on_mirror | check.lost_on_source
        return len(lost)

    def report(self, model: AckModel, writer: QemuWriter, stack: Stack) -> str:
        kinds = ", ".join(f"{k} {self.faults[k]}" for k in self.kinds)
        restarts = Counter(name for c in self.checks for name in c.restarted)
        slowest = max((c.seconds for c in self.checks), default=0.0)
        return (
            f"fault injection (seed {self.seed}): {sum(self.faults.values())} faults injected ({kinds}); "
            f"{self.mirrors_differing} mirrors differing; {self.writes_lost} acknowledged writes lost; "
            f"{model.acknowledged} writes acknowledged, {model.unacknowledged} in doubt, "
            f"{writer.chunks} qemu-io runs ({writer.failed_chunks} hit by a fault); "
            f"{len(self.checks)} recovery points verified; restarts by the supervisor {dict(restarts)}, "
            f"exits other than our kill -9 {stack.unexpected_exits}; slowest convergence {slowest:.1f} s"
        )


@pytest.fixture
def stack(local_broker: LocalCluster, tmp_path: Path) -> Iterator[Stack]:
    cluster = FaultCluster.on(local_broker, tmp_path / "state")
    made = Stack(cluster, VOLUME, VOLUME_SIZE, tmp_path, ["--delivery-timeout-ms", "3000"])
    try:
        yield made
    finally:
        made.close()


def _inject(kind: str, stack: Stack, rng: random.Random) -> None:
    """The fault, some writes while it lasts, the restart of what it hit."""
    broker = stack.cluster.broker
    if kind == "broker-restart":
        broker.restart()
        return
    if kind in ("broker-kill", "broker-kill-one"):
        broker.kill(rng.randint(1, broker.brokers) if kind == "broker-kill-one" else None)
        rng_sleep(rng, 0.0, 2.0)
        broker.start()
        return
    component = stack.components[kind]
    component.kill()
    rng_sleep(rng, 0.0, 1.0)
    component.start()


def schedule(rng: random.Random, faults: int, kinds: tuple[str, ...]) -> Iterator[str]:
    """Fault kinds in random order, each kind once per round of len(kinds): even coverage, and
    a run time that does not depend on how many broker faults the dice chose."""
    for _round in range(-(-faults // len(kinds))):
        yield from rng.sample(kinds, len(kinds))


def rng_sleep(rng: random.Random, low: float, high: float) -> None:
    time.sleep(rng.uniform(low, high))


def test_pipeline_converges_after_every_fault(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    kinds = kinds_for(stack.cluster.broker.brokers)
    faults = int(os.environ.get("TIDEMARK_FAULTS") or len(kinds))  # CI: one round
    seed = int(os.environ.get("TIDEMARK_FAULT_SEED") or random.SystemRandom().randrange(1 << 32))
    rng = random.Random(seed)
    tally = Tally(seed, kinds)
    model = AckModel(VOLUME_SIZE, BLOCK)
    commands = trace_commands(sample("msr"), "msr", VOLUME_SIZE, BLOCK)
    stack.start()
    writer = QemuWriter(commands, stack.tracker.uri, model, CHUNK)
    converger = Converger(stack, model)
    writer.start()
    try:
        # the schedule's last round may run over `faults`: zip stops at the count
        for number, kind in zip(range(1, faults + 1), schedule(rng, faults, kinds), strict=False):
            rng_sleep(rng, 0.3, 2.5)
            _inject(kind, stack, rng)
            tally.faults[kind] += 1
            rng_sleep(rng, 0.2, 1.5)
            writer.pause()
            check = converger.check(f"fault-{number}-{kind}")
            tally.checks.append(check)
            assert check.passed, _failure(check, stack)
            writer.resume()
        writer.pause()
        tally.final_differing = _verify_points(stack, tally)
    finally:
        writer.close()
        with capsys.disabled():
            print("\n" + tally.report(model, writer, stack))
    assert tally.mirrors_differing == 0 and tally.writes_lost == 0, tally.report(model, writer, stack)
    assert sum(tally.faults.values()) == faults


def _verify_points(stack: Stack, tally: Tally) -> list[str]:
    """With the applier stopped: the last and the first point against their manifests."""
    stack.mirror.stop()
    points = [c.rp_id for c in tally.checks if c.rp_id is not None]
    differing = []
    for rp in sorted({points[-1], points[0]} if points else set()):
        done = stack.cluster.cli(
            "verify", "--volume", stack.volume, "--mirror", str(stack.mirror_path), "--rp", str(rp), check=False
        )
        assert done.returncode in (0, 3), f"verify --rp {rp} failed to run:\n{done.stdout}\n{done.stderr}"
        if done.returncode == 3:
            differing.append(f"rp {rp}: {done.stdout[-1500:]}")
    return differing


def _failure(check: Check, stack: Stack) -> str:
    return (
        f"{check.label}: mirror identical {check.mirror_identical}, acknowledged writes lost on the mirror "
        f"{sorted(check.lost_on_mirror)[:20]}, on the source {sorted(check.lost_on_source)[:20]}, "
        f"pending resync {check.pending_resync}\n{check.verify_output}\n{stack.logs()}"
    )
