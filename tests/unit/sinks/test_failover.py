"""Failover and failback without Kafka: promote, write the promoted side, resync only what differs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pyroaring import BitMap

from tests.unit.core.nbd.export_thread import ExportThread
from tidemark.core.nbd.export import ThreadedExport
from tidemark.sinks.exceptions import FailbackConflictError, FailbackError, PromotedMirrorError
from tidemark.sinks.mount.serve import MountRequest, mounted
from tidemark.sinks.ops.failback import StreamPosition, failback
from tidemark.sinks.ops.failover import failover
from tidemark.sinks.ops.revert import revert_mirror
from tidemark.sinks.storage import progress as progress_file

from .mount_fixtures import BS, SIZE, qemu_io, qemu_io_failed, three_points

pytestmark = pytest.mark.nbd


def differing_blocks(a: bytes, b: bytes) -> set[int]:
    return {i for i in range(len(a) // BS) if a[i * BS : (i + 1) * BS] != b[i * BS : (i + 1) * BS]}


def test_failover_failback_round_trip_moves_only_differing_blocks(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    model, state_dir = harness.model, harness.root / "state"
    # The old primary went on after point 3: the mirror applied one set (done by three_points), a
    # later set reached the stream but not the mirror, and that is what the primary holds.
    model.write(200 * BS, b"\x11" * 8 * BS)
    model.seal()
    unapplied_blocks = BitMap(range(200, 208))
    primary = tmp_path / "primary.raw"
    primary.write_bytes(bytes(model.image))
    harness.close()

    report = failover(state_dir, "default", "vol", harness.path)
    assert report.rp_id == 3 and report.reverted_blocks > 0
    assert harness.image() == model.points[3]
    state = progress_file.load(harness.layout.progress)
    assert state is not None and state.state == "FAILED_OVER" and state.failover_rp == 3

    with pytest.raises(PromotedMirrorError, match="failed over at recovery point 3"):
        revert_mirror(state_dir, "default", "vol", harness.path, 1)
    with pytest.raises(PromotedMirrorError), mounted(state_dir, MountRequest("vol", 2)):
        pass

    with mounted(state_dir, MountRequest("vol")) as backend, ExportThread(ThreadedExport(backend)) as thread:
        done = qemu_io(thread.url(), "write -P 0x42 40960 8192", "write -P 0x43 1048000 100", "flush")
        assert not qemu_io_failed(done), done.stdout + done.stderr
    promoted = harness.image()
    assert promoted[40960 : 40960 + 8192] == b"\x42" * 8192

    expected_diff = differing_blocks(promoted, primary.read_bytes())
    resume = StreamPosition(0, 10_000, model.changeset_id, model.seq, None)
    old_primary = primary.read_bytes()
    with pytest.raises(FailbackConflictError, match=r"^2 blocks of volume 'vol' .* changed on both sides"):
        failback(state_dir, "default", "vol", harness.path, primary, primary_changed=unapplied_blocks, resume=resume)
    assert primary.read_bytes() == old_primary and harness.image() == promoted  # nothing touched
    back = failback(
        state_dir, "default", "vol", harness.path, primary, primary_changed=unapplied_blocks, resume=resume,
        discard="primary", fence=lambda: 7,
    )  # fmt: skip
    assert primary.read_bytes() == promoted
    assert (back.conflicts, back.overwritten, back.generation) == (2, "primary", 7)
    assert not list(harness.layout.root.glob("failback-saved*")), "the saved copy outlived the verify"
    assert back.copied == len(expected_diff) > 0
    assert back.candidates < SIZE // BS, "failback compared the whole disk"
    assert back.candidates >= back.copied

    after = progress_file.load(harness.layout.progress)
    assert after is not None and after.failover_rp is None and after.state == "PAUSED"
    assert after.changeset_id == model.changeset_id and after.points == []
    assert not harness.layout.promoted_writes.exists()

    harness.open()  # replication resumes: the next set of the primary applies on the mirror
    rng = random.Random(9)
    data = rng.randbytes(4 * BS)
    model.image[:] = primary.read_bytes()
    model.generation = back.generation  # the processor seals under the generation the failback fenced with
    model.write(0, data)
    assert [a.rp_id for a in harness.feed(model.seal(cut=True))] == [4]
    assert harness.image() == bytes(model.image)


def test_failback_without_failover_and_with_a_wrong_primary_is_refused(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    harness.close()
    state_dir = harness.root / "state"
    primary = tmp_path / "p.raw"
    primary.write_bytes(bytes(SIZE))
    with pytest.raises(FailbackError, match="was not failed over"):
        failback(state_dir, "default", "vol", harness.path, primary)
    failover(state_dir, "default", "vol", harness.path, to_rp=2)
    primary.write_bytes(bytes(BS))
    with pytest.raises(FailbackError, match="pass the image of this volume"):
        failback(state_dir, "default", "vol", harness.path, primary)


def test_full_failback_finds_writes_made_outside_tidemark(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    harness.close()
    state_dir = harness.root / "state"
    failover(state_dir, "default", "vol", harness.path, to_rp=1)
    primary = tmp_path / "p.raw"
    primary.write_bytes(harness.image())
    with harness.path.open("r+b") as handle:  # an untracked local write on the promoted side
        handle.seek(250 * BS)
        handle.write(b"\x99" * BS)
    with pytest.raises(FailbackConflictError, match="cannot tell which side"):
        failback(state_dir, "default", "vol", harness.path, primary, full=True)
    report = failback(state_dir, "default", "vol", harness.path, primary, full=True, discard="primary")
    assert (report.candidates, report.copied) == (SIZE // BS, 1)
    assert primary.read_bytes() == harness.image()


def test_discard_mirror_keeps_the_old_primarys_content(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    model, state_dir = harness.model, harness.root / "state"
    model.write(10 * BS, b"\x77" * 2 * BS)  # the old primary went on: blocks 10, 11 (never applied)
    model.seal()
    primary = tmp_path / "primary.raw"
    primary.write_bytes(bytes(model.image))
    harness.close()
    failover(state_dir, "default", "vol", harness.path, fence=lambda: 1)
    assert progress_file.load(harness.layout.progress).generation == 1  # type: ignore[union-attr]
    with mounted(state_dir, MountRequest("vol")) as backend, ExportThread(ThreadedExport(backend)) as thread:
        done = qemu_io(thread.url(), f"write -P 0x42 {11 * BS} {2 * BS}", "flush")  # blocks 11, 12
        assert not qemu_io_failed(done), done.stdout + done.stderr
    report = failback(
        state_dir, "default", "vol", harness.path, primary, primary_changed=BitMap([10, 11]), discard="mirror"
    )
    assert (report.conflicts, report.overwritten) == (1, "mirror")
    assert harness.image() == primary.read_bytes() == bytes(model.image)


def test_after_a_reverse_failover_the_promoted_trackers_blocks_count_as_the_mirrors_side(
    make_harness,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    """failover --reverse: the promoted copy is written through a tracker, not `tidemark mount`, so its
    side is the blocks of the change sets sealed under the failover's generation (`promoted_changed`)."""
    harness = three_points(make_harness)
    model, state_dir = harness.model, harness.root / "state"
    model.write(10 * BS, b"\x77" * 3 * BS)  # the old primary, before the fence: blocks 10-12
    model.seal()
    primary = tmp_path / "primary.raw"
    primary.write_bytes(bytes(model.image))
    harness.close()
    failover(state_dir, "default", "vol", harness.path, fence=lambda: 1)
    with harness.path.open("r+b") as promoted:  # its tracker writes blocks 12, 13 (sealed under generation 1)
        promoted.seek(12 * BS)
        promoted.write(b"\x42" * 2 * BS)
    mirror_before, primary_before = harness.image(), primary.read_bytes()
    primary_changed, promoted_changed = BitMap([10, 11, 12]), BitMap([12, 13])
    with pytest.raises(FailbackConflictError, match=r"^1 blocks of volume 'vol' .* changed on both sides"):
        failback(
            state_dir,
            "default",
            "vol",
            harness.path,
            primary,
            primary_changed=primary_changed,
            promoted_changed=promoted_changed,
        )
    assert harness.image() == mirror_before and primary.read_bytes() == primary_before
    report = failback(
        state_dir,
        "default",
        "vol",
        harness.path,
        primary,
        primary_changed=primary_changed,
        promoted_changed=promoted_changed,
        discard="primary",
    )
    assert (report.conflicts, report.copied) == (1, len(differing_blocks(mirror_before, primary_before)))
    assert {10, 11, 12, 13} <= differing_blocks(mirror_before, primary_before)
    assert primary.read_bytes() == harness.image() == mirror_before
