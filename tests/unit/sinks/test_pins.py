"""Pinned points: retention keeps a mounted point; a point that is gone anyway is never served wrong."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.core.nbd.export_thread import ExportThread
from tidemark.core.nbd.export import ThreadedExport
from tidemark.sinks.exceptions import UnknownRecoveryPointError
from tidemark.sinks.mount.exports import PointExport
from tidemark.sinks.mount.live_view import LivePointView
from tidemark.sinks.mount.serve import MountRequest, mounted
from tidemark.sinks.storage.pins import live_pins, pinned, process_start
from tidemark.sinks.storage.retention import Retention

from .mount_fixtures import BS, nbdcopy, run, three_points

pytestmark = pytest.mark.nbd
RETAIN_2 = Retention(count=2)


def _four_newer_points(harness) -> None:  # noqa: ANN001
    model = harness.model
    for n in range(4):
        model.write(0, bytes([0xA0 + n]) * 64 * BS)  # overwrites what point 1 holds
        harness.feed(model.seal(cut=True))
        harness.mirror.expire(RETAIN_2, int(time.time() * 1000))


def test_retention_keeps_a_mounted_point_and_status_sees_the_pin(make_harness, tmp_path: Path) -> None:  # noqa: ANN001
    harness = three_points(make_harness)
    with mounted(harness.root / "state", MountRequest("vol", 1)) as backend:
        assert [(p.rp_id, p.purpose) for p in live_pins(harness.layout.root)] == [(1, "mount")]
        with ExportThread(ThreadedExport(backend)) as thread:
            _four_newer_points(harness)
            assert nbdcopy(thread.url(), tmp_path / "rp1.raw") == harness.model.points[1]
        assert harness.mirror.progress.retained() == [1, 6, 7]
    assert live_pins(harness.layout.root) == []
    assert harness.mirror.expire(RETAIN_2, int(time.time() * 1000)) == [1]  # unpinned: retention goes on


def test_a_pin_of_a_dead_process_is_ignored(make_harness) -> None:  # noqa: ANN001
    harness = three_points(make_harness)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = harness.layout.root / "pins"
    folder.mkdir()
    (folder / f"{dead.pid}-stale.json").write_text(
        json.dumps({"rp_id": 1, "pid": dead.pid, "start": 1, "purpose": "mount"})
    )
    assert live_pins(harness.layout.root) == [] and not list(folder.iterdir())
    assert process_start(dead.pid) is None or process_start(dead.pid) != 1
    assert harness.mirror.expire(Retention(count=1), int(time.time() * 1000)) == [1, 2]


def test_a_point_expired_before_its_pin_fails_every_read(make_harness) -> None:  # noqa: ANN001
    harness = three_points(make_harness)
    view = LivePointView(harness.layout, 1)  # opened, then expired before anything pinned it
    try:
        _four_newer_points(harness)
        assert 1 not in harness.mirror.progress.retained()
        for _ in range(2):  # the second read must fail too, never serve newer data
            with pytest.raises(UnknownRecoveryPointError, match="expired while mounted .* undo data is gone"):
                view.read(0, 64 * BS)
    finally:
        view.close()
    with (
        pinned(harness.layout.root, 1, "mount"),
        pytest.raises(UnknownRecoveryPointError, match="does not hold recovery point 1"),
        mounted(harness.root / "state", MountRequest("vol", 1)),
    ):
        pass


def test_nbd_reads_of_an_expired_mount_are_eio_and_logged(
    make_harness,
    caplog: pytest.LogCaptureFixture,  # noqa: ANN001
) -> None:
    harness = three_points(make_harness)
    view = LivePointView(harness.layout, 1)
    with view, ExportThread(ThreadedExport(PointExport("vol", view, None))) as thread:
        _four_newer_points(harness)
        for _ in range(2):
            done = run("qemu-io", "-r", "-f", "raw", thread.url(), "-c", f"read 0 {64 * BS}")
            assert "Input/output error" in done.stdout + done.stderr, done.stdout + done.stderr
    assert "recovery point 1 of volume 'vol' at site 'default' expired while mounted" in caplog.text
