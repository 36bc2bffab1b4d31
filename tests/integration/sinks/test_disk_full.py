"""A full disk under the mirror: apply stops with a clear error, records nothing, then resumes.

The full filesystem is a real one: an 8 MiB tmpfs mounted for the test (needs root or
CAP_SYS_ADMIN; the test is skipped with the reason where mounting is not permitted). A ballast
file fills it; deleting the ballast is "space returns".
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidemark.sinks.apply.applier import Applier, ApplierOptions, RunSummary
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.ops.verify_run import VerifyRequest, run_verify
from tidemark.sinks.status import latest_statuses

from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, register

pytestmark = pytest.mark.integration

BS = 4096
FS_SIZE = "8m"
WAIT_S = 60.0


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "small-fs"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(where)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the filesystem of `folder` to the last byte with a ballast file."""
    ballast = folder / "ballast"
    chunk = bytes(64 * 1024)
    with ballast.open("wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(chunk)
        for size in (4096, 512, 1):  # the tail smaller than a chunk
            with contextlib.suppress(OSError):
                while True:
                    handle.write(chunk[:size])
    return ballast


class RunningApplier:
    def __init__(self, tm, state_dir: Path, volume: str, path: Path) -> None:  # noqa: ANN001
        self.applier = Applier(tm.clients, tm.topics, state_dir, ApplierOptions(volume, path, disk_full_retry_s=0.3))
        self.progress = MirrorLayout.of(state_dir, "default", volume).progress
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.summary: RunSummary | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self.summary = self.applier.run(self.stop)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def changeset_id(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(self.progress.read_text())["changeset_id"]
        return 0

    def wait(self, predicate, what: str) -> None:  # noqa: ANN001
        deadline = time.monotonic() + WAIT_S
        while not predicate():
            assert self.error is None, f"the applier failed: {self.error!r}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def close(self) -> RunSummary:
        self.stop.set()
        self.thread.join(60)
        assert self.error is None, f"the applier failed: {self.error!r}"
        assert self.summary is not None
        return self.summary


def _disk_full_then_resume(tm, model: StreamModel, state_dir: Path, mirror: Path, full: Path) -> None:  # noqa: ANN001
    register(tm.clients, tm.topics, model)
    model.write(0, os.urandom(64 * BS))
    publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=True))
    running = RunningApplier(tm, state_dir, model.volume, mirror)
    try:
        running.wait(lambda: running.changeset_id() == 1, "change set 1")
        at_rp_1 = bytes(model.image)
        ballast = _fill(full)
        model.write(0, os.urandom(64 * BS))  # overwrites: the undo store needs the pre-images
        model.write(256 * BS, os.urandom(256 * BS))  # new blocks: the mirror file grows
        publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=True))
        running.wait(lambda: running.applier.summary.disk_full >= 1, "the set to meet the full disk")
        time.sleep(1.0)  # several retry periods while the disk stays full
        assert running.changeset_id() == 1, "nothing of the failed set is recorded"
        status = latest_statuses(tm.clients, tm.topics, model.volume)["default"]
        assert status["state"] == "ERROR" and status["changeset_id"] == 1, status
        message = status["message"]
        assert "disk full" in message and repr(model.volume) in message and "free" in message, message

        ballast.unlink()  # space returns
        running.wait(lambda: running.changeset_id() == 2, "change set 2 after space returned")
    finally:
        summary = running.close()
    assert summary.changesets == 2 and summary.rp_id == 2
    assert mirror.read_bytes() == bytes(model.image)
    source = mirror.with_name("rp1.img")
    source.write_bytes(at_rp_1)
    old = run_verify(tm.clients, tm.topics, state_dir, VerifyRequest(model.volume, mirror, rp=1, source=source))
    assert old.identical, "the undo data of recovery point 1 is whole after the retries"
    assert latest_statuses(tm.clients, tm.topics, model.volume)["default"]["state"] == "REPLICATING"


def test_mirror_filesystem_full(tm, small_fs: Path, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-full", 1024 * BS, block_size=BS)
    _disk_full_then_resume(tm, model, tm.settings.state_dir, small_fs / "mirror.img", small_fs)


def test_undo_store_filesystem_full(tm, small_fs: Path, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-undo-full", 1024 * BS, block_size=BS)
    _disk_full_then_resume(tm, model, small_fs / "state", tmp_path / "mirror.img", small_fs)
