"""`tidemark mount`: a recovery point served over NBD from the mirror and its undo data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.core.nbd.export_thread import ExportThread
from tidemark.core.nbd.export import ThreadedExport
from tidemark.sinks.exceptions import MirrorInUseError, UnknownRecoveryPointError
from tidemark.sinks.mount.serve import MountRequest, mounted
from tidemark.sinks.ops.revert import revert_mirror

from .mount_fixtures import BS, digest, nbdcopy, qemu_io, qemu_io_failed, three_points

pytestmark = pytest.mark.nbd


def test_nbdcopy_of_the_second_point_equals_the_source_then(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    state = harness.root / "state"
    with mounted(state, MountRequest("vol", 2)) as backend, ExportThread(ThreadedExport(backend)) as thread:
        assert nbdcopy(thread.url(), tmp_path / "rp2.raw") == harness.model.points[2]
        assert qemu_io_failed(qemu_io(thread.url(), "write -P 0x77 0 4k"))
    assert harness.image() != harness.model.points[2], "the mirror has moved past point 2"


def test_reads_stay_at_the_point_while_the_applier_goes_on(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    model = harness.model
    with (
        mounted(harness.root / "state", MountRequest("vol", 1)) as backend,
        ExportThread(ThreadedExport(backend)) as thread,
    ):
        first = nbdcopy(thread.url(), tmp_path / "a.raw")
        for round_ in range(3):
            model.write(0, bytes([round_ + 1]) * 64 * BS)  # overwrites blocks point 1 holds elsewhere
            model.write(100 * BS, bytes([0xEE]) * 32 * BS)
            harness.feed(model.seal(cut=round_ == 1))
            assert nbdcopy(thread.url(), tmp_path / f"r{round_}.raw") == model.points[1]
    assert first == model.points[1]


def test_writable_mount_keeps_writes_in_the_overlay(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    before = digest(harness.path)
    overlay = tmp_path / "over.img"
    request = MountRequest("vol", 2, writable=True, overlay=overlay)
    with mounted(harness.root / "state", request) as backend, ExportThread(ThreadedExport(backend)) as thread:
        done = qemu_io(thread.url(), "write -P 0x5a 1000 10000", "read -P 0x5a 1000 10000", "flush")
        assert not qemu_io_failed(done), done.stdout + done.stderr
        image = nbdcopy(thread.url(), tmp_path / "w.raw")
    expected = bytearray(harness.model.points[2])
    expected[1000:11000] = b"\x5a" * 10000
    assert image == bytes(expected)
    assert digest(harness.path) == before, "the mirror was written"
    with mounted(harness.root / "state", request) as backend, ExportThread(ThreadedExport(backend)) as thread:
        assert nbdcopy(thread.url(), tmp_path / "again.raw") == bytes(expected), "overlay not kept"


def test_revert_waits_for_the_mount_and_unknown_points_are_refused(make_harness) -> None:
    harness = three_points(make_harness)
    state = harness.root / "state"
    with (
        pytest.raises(UnknownRecoveryPointError, match="retained points: 1, 2, 3"),
        mounted(state, MountRequest("vol", 9)),
    ):
        pass
    harness.close()
    with mounted(state, MountRequest("vol", 3)), pytest.raises(MirrorInUseError, match="is mounted"):
        revert_mirror(state, "default", "vol", harness.path, 1)
    assert revert_mirror(state, "default", "vol", harness.path, 1).rp_id == 1
