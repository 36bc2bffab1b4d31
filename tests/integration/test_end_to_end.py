"""Issue #5's "Done when", end to end through every real stage, each in its own process.

`tidemark track nbd` serves a source image to real NBD clients (qemu-io, nbdcopy) and journals
every write; `tidemark process` folds the journal into change sets and recovery points;
`tidemark mirror` applies them. Recovery points are asked for with `tidemark rp create` after a
round of writes (the cut then follows every write of the round); the tests wait for the manifest,
then for the mirror's MirrorStatus to hold the point, polling, never sleeping a fixed time.

1. qemu-io writes, three recovery points with a copy of the source taken at each; `verify` finds
   the mirror identical to the source at the latest; `nbdcopy` from `mount --rp <second>` equals
   the copy at the second; `revert --to <first>` gives the first copy and rewrites exactly the
   blocks written after it, MirrorStatus says so, and the restarted mirror comes back to the latest.
2. Failover to a point while the primary goes on: the failover bumps the generation, so the old
   primary's later writes are fenced (they reach no change set); writes on the promoted mirror;
   failback refuses while blocks changed on both sides, then `--full --discard primary` copies only
   the differing blocks and makes the old primary the primary under the next generation.
3. `kill -9` of the mirror while it applies 64 MiB copied in with nbdcopy; a restart verifies.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidemark.core.volumes import lookup_volume

from ..conftest import CliRunner, TidemarkTest
from .pipeline_harness import Pipeline, blocks_of, differing_blocks
from .producers.nbd_harness import qemu_io

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

KIB = 1024
MIB = 1024 * KIB
BS = 4096


@pytest.fixture
def pipelines(tm: TidemarkTest, cli: CliRunner, tmp_path: Path) -> Iterator[list[Pipeline]]:
    """Pipelines a test made; every process they started is stopped at teardown."""
    made: list[Pipeline] = []
    yield made
    for pipeline in made:
        pipeline.close()


def _pipeline(pipelines: list[Pipeline], tm: TidemarkTest, cli: CliRunner, tmp_path: Path, size: int) -> Pipeline:
    pipeline = Pipeline(tm, cli, tmp_path, "disk0", size)
    pipelines.append(pipeline)
    return pipeline


def _nbdcopy(source: str, destination: str) -> None:
    done = subprocess.run(["nbdcopy", source, destination], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"nbdcopy {source} {destination}: {done.stdout}{done.stderr}"


def _rewrote(output: str) -> int:
    found = re.search(r"rewrote (\d+) blocks", output)
    assert found, output
    return int(found.group(1))


# -- 1. qemu-io through the pipeline; three points; verify, mount, revert ---------------------

ROUNDS = [
    ["write -P 0x11 0 256k", "write -P 0x12 1M 64k", "write -z 2M 32k", "write -P 0x13 6M 520k"],
    ["write -P 0x21 128k 256k", "write -P 0x22 4M 128k", "write -z 1M 16k"],
    ["write -P 0x31 8M 1M", "write -P 0x32 200k 8k", "discard 6M 64k", "write -P 0x33 12M 4k", "write -P 0x34 6M 4k"],
]


def test_qemu_io_writes_reach_the_mirror_and_every_point_is_exact(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    size = 16 * MIB
    pipe = _pipeline(pipelines, tm, cli, tmp_path, size)
    pipe.start_tracker("--compression", "zstd")
    pipe.start_processor()
    pipe.start_mirror()

    points: list[int] = []
    copies: list[Path] = []
    for number, commands in enumerate(ROUNDS, start=1):
        pipe.write(commands)
        copies.append(pipe.copy_source(f"source-at-{number}.img"))
        points.append(pipe.cut(f"round {number}"))
    assert points == sorted(points) and len(set(points)) == 3, points
    status = pipe.wait_held(points[-1])
    assert status["state"] == "REPLICATING", status

    # 3. the second point, served straight from the mirror and its undo data while it applies
    with pipe.mounted("--rp", str(points[1])) as url:
        _nbdcopy(url, str(tmp_path / "mounted-2.raw"))
    assert (tmp_path / "mounted-2.raw").read_bytes() == copies[1].read_bytes()

    assert "default" in cli("rp", "list", "--volume", pipe.volume).stdout
    pipe.stop_mirror()

    # 1. verify: against the manifests of the latest point, and against the source itself
    latest = cli("verify", "--volume", pipe.volume, "--mirror", str(pipe.mirror)).stdout
    assert latest.startswith("identical"), latest
    against = cli("verify", "--volume", pipe.volume, "--mirror", str(pipe.mirror), "--source", str(pipe.image),
                  "--rp", str(points[-1])).stdout  # fmt: skip
    assert against.startswith("identical"), against
    assert pipe.mirror.read_bytes() == copies[2].read_bytes() == pipe.image.read_bytes()

    # 2. revert to the first point: exactly the blocks written after it are rewritten
    changed_after_first = blocks_of(ROUNDS[1] + ROUNDS[2], BS)
    out = cli("revert", "--volume", pipe.volume, "--mirror", str(pipe.mirror), "--to", str(points[0])).stdout
    assert _rewrote(out) == len(changed_after_first) < size // BS // 10, out
    assert differing_blocks(pipe.mirror.read_bytes(), copies[0].read_bytes(), BS) == set()
    first = cli("verify", "--volume", pipe.volume, "--mirror", str(pipe.mirror), "--source", str(copies[0]),
                "--rp", str(points[0])).stdout  # fmt: skip
    assert first.startswith("identical"), first
    paused = pipe.status()
    assert paused is not None and (paused["state"], paused["rp_id"]) == ("PAUSED", points[0]), paused

    # the reverted mirror resumes after the first point and comes back to the latest
    pipe.start_mirror()
    pipe.wait_held(points[-1])
    pipe.stop_mirror()
    assert pipe.mirror.read_bytes() == copies[2].read_bytes()


# -- 2. failover while the primary goes on, writes on the promoted side, failback -------------

BEFORE_FAILOVER = ["write -P 0x41 0 512k", "write -P 0x42 5M 256k"]
APPLIED_THEN_REVERTED = ["write -P 0x43 64k 128k", "write -P 0x44 9M 64k"]  # A1: after the failover point
SAME_ON_BOTH = "write -P 0x55 10M 64k"  # written on the promoted side after the fence
PRIMARY_AFTER_STOP = ["write -P 0x45 5M 32k"]  # A2: refused by the fenced old primary
PROMOTED = ["write -P 0x61 3M 128k", "write -P 0x62 64k 8k", SAME_ON_BOTH, "flush"]  # P


def test_failover_and_failback_move_only_the_differing_blocks(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    size = 16 * MIB
    pipe = _pipeline(pipelines, tm, cli, tmp_path, size)
    pipe.start_tracker("--compression", "lz4")
    pipe.start_processor()
    pipe.start_mirror()
    pipe.write(BEFORE_FAILOVER)
    at_failover_point = pipe.copy_source("source-at-failover-point.img")
    failover_rp = pipe.cut("failover point")
    pipe.write(APPLIED_THEN_REVERTED)
    pipe.wait_held(pipe.cut("applied"))

    out = cli("failover", "--volume", pipe.volume, "--mirror", str(pipe.mirror), "--to", str(failover_rp),
              "--stop-applier").stdout  # fmt: skip
    pipe.mirror_stopped_by_another()
    found = re.search(r"at recovery point (\d+): reverted (\d+) blocks", out)
    assert found, out
    assert (int(found.group(1)), int(found.group(2))) == (failover_rp, len(blocks_of(APPLIED_THEN_REVERTED, BS)))
    assert pipe.mirror.read_bytes() == at_failover_point.read_bytes()
    assert pipe.status()["state"] == "FAILED_OVER"  # type: ignore[index]

    spec = lookup_volume(tm.clients, tm.topics, pipe.volume)
    assert (spec.generation, spec.primary_site) == (1, "default") and "generation 1" in out

    # The old primary's tracker sees the new generation and refuses writes (EPERM) within seconds;
    # the probe zeroes a range that is zero on both sides, so an early acceptance changes nothing.
    assert pipe.tracker is not None
    uri = pipe.tracker.uri
    pipe.wait(lambda: _refused(uri, "write -z 15M 4k"), "the old primary's tracker to refuse writes")
    assert _refused(uri, PRIMARY_AFTER_STOP[0]), "a fenced tracker accepted a write"
    with pipe.mounted() as url:  # the promoted mirror, written through the tracked export
        qemu_io(url, PROMOTED)
    pipe.stop_tracker()

    primary, promoted = pipe.image.read_bytes(), pipe.mirror.read_bytes()
    differing = differing_blocks(primary, promoted, BS)
    assert differing == blocks_of(APPLIED_THEN_REVERTED + PROMOTED, BS)
    both = blocks_of(APPLIED_THEN_REVERTED, BS) & blocks_of(PROMOTED, BS)
    refused = cli("failback", "--volume", pipe.volume, "--mirror", str(pipe.mirror), "--primary", str(pipe.image),
                  check=False)  # fmt: skip
    assert refused.returncode == 6 and f"{len(both)} blocks of volume {pipe.volume!r}" in refused.stderr, refused
    assert pipe.image.read_bytes() == primary and pipe.mirror.read_bytes() == promoted
    # the fenced writes reached no change set: only a full compare finds them
    out = cli("failback", "--volume", pipe.volume, "--mirror", str(pipe.mirror), "--primary", str(pipe.image),
              "--full", "--discard", "primary").stdout  # fmt: skip
    found = re.search(r"compared (\d+) blocks, copied (\d+) blocks", out)
    assert found, out
    assert (int(found.group(1)), int(found.group(2))) == (size // BS, len(differing)), out
    assert pipe.image.read_bytes() == pipe.mirror.read_bytes() == promoted
    assert pipe.status()["state"] == "PAUSED"  # type: ignore[index]
    spec = lookup_volume(tm.clients, tm.topics, pipe.volume)
    assert (spec.generation, spec.primary_site) == (2, None)


def _refused(uri: str, command: str) -> bool:
    """True when qemu-io's write through `uri` fails with EPERM (a fenced tracker)."""
    result = subprocess.run(["qemu-io", "-f", "raw", "-c", command, uri], capture_output=True, text=True, timeout=60)
    return "Operation not permitted" in result.stdout + result.stderr


# -- 3. kill -9 of the mirror while it applies 64 MiB ----------------------------------------


def test_kill_9_of_the_mirror_during_apply_then_restart_verifies(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    size = 64 * MIB
    pipe = _pipeline(pipelines, tm, cli, tmp_path, size)
    pipe.start_tracker()
    pipe.start_processor("--subinterval-max-mib", "1")  # many change sets: the kill lands among them
    data = tmp_path / "data.raw"
    rng = random.Random(64)
    with data.open("wb") as handle:
        for _ in range(size // MIB):
            handle.write(rng.randbytes(MIB))
    assert pipe.tracker is not None
    _nbdcopy(str(data), pipe.tracker.uri)
    rp = pipe.cut("after nbdcopy")
    last_changeset = pipe.manifests()[rp]["changeset_last"]
    assert last_changeset >= 32, f"64 MiB in only {last_changeset} change sets"

    pipe.start_mirror()
    # Polled tightly: the applier works through the backlog fast.
    pipe.wait(lambda: pipe.applied_changeset() >= 2, "the mirror applying change set 2", timeout=120, interval=0.002)
    pipe.kill_mirror()
    killed_at = pipe.applied_changeset()
    assert 2 <= killed_at < last_changeset, f"killed at change set {killed_at} of {last_changeset}"

    pipe.start_mirror()
    pipe.wait_held(rp)
    out = pipe.stop_mirror()
    assert f"now at change set {last_changeset}" in out, out
    latest = cli("verify", "--volume", pipe.volume, "--mirror", str(pipe.mirror)).stdout
    assert latest.startswith("identical"), latest
    against = cli("verify", "--volume", pipe.volume, "--mirror", str(pipe.mirror), "--source", str(data),
                  "--rp", str(rp)).stdout  # fmt: skip
    assert against.startswith("identical"), against
    assert pipe.mirror.read_bytes() == pipe.image.read_bytes() == data.read_bytes()
