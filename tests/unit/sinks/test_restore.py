"""`tidemark restore`'s session without Kafka: a mirror harness, the export, the copier."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pyroaring import BitMap

from tests.unit.core.nbd.export_thread import ExportThread
from tidemark.core.nbd.export import ThreadedExport
from tidemark.sinks.restore.activity import ClientActivity
from tidemark.sinks.restore.copier import CopyOptions
from tidemark.sinks.restore.exceptions import RestoreError
from tidemark.sinks.restore.plan import widened
from tidemark.sinks.restore.record import load_record, relocated_path
from tidemark.sinks.restore.session import RestoreRequest, restoring
from tidemark.sinks.storage.pins import live_pins

from .mount_fixtures import BS, SIZE, nbdcopy, qemu_io, qemu_io_failed, three_points

SMALL_RUNS = CopyOptions(run_bytes=4 * BS, sync_bytes=16 * BS)


def relocate(state: Path, request: RestoreRequest, options: CopyOptions = SMALL_RUNS) -> None:
    with restoring(state, request, options) as session:
        session.start()
        assert session.done.wait(30) and session.error is None


def test_a_point_is_relocated_into_a_sparse_destination(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    destination = tmp_path / "dest.img"
    with restoring(harness.root / "state", RestoreRequest("vol", 2, destination), SMALL_RUNS) as session:
        assert [pin.rp_id for pin in live_pins(harness.layout.root)] == [2]
        session.start()
        assert session.done.wait(30) and session.error is None
        assert live_pins(harness.layout.root) == [], "the point is still pinned after the relocation"
        assert session.export.read(0, SIZE) == harness.model.points[2]
    assert destination.read_bytes() == harness.model.points[2]
    record = load_record(destination)
    assert record is not None and record.complete
    assert os.stat(destination).st_blocks * 512 < SIZE, "holes of the point were written"
    labels = {"component": "restore", "volume": "vol"}
    assert REGISTRY.get_sample_value("tidemark_restore_remaining_bytes", labels) == 0
    assert (REGISTRY.get_sample_value("tidemark_bytes_total", labels) or 0) > 0


def test_client_writes_win_over_the_copier_and_partial_blocks_keep_the_point(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    destination = tmp_path / "dest.img"
    expected = bytearray(harness.model.points[1])
    with restoring(harness.root / "state", RestoreRequest("vol", 1, destination), SMALL_RUNS) as session:
        export = session.export
        export.write(3 * BS + 100, b"\xab" * 5000)  # partly covers blocks 3 and 4
        expected[3 * BS + 100 : 3 * BS + 5100] = b"\xab" * 5000
        export.zero(20 * BS + 1, 2 * BS)
        expected[20 * BS + 1 : 22 * BS + 1] = bytes(2 * BS)
        assert export.read(0, SIZE) == bytes(expected)
        session.start()
        assert session.done.wait(30) and session.error is None
        assert export.read(0, SIZE) == bytes(expected)
    assert destination.read_bytes() == bytes(expected)


def test_writes_during_the_copy_are_never_copied_over(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    destination = tmp_path / "dest.img"
    expected = bytearray(harness.model.points[3])
    with restoring(harness.root / "state", RestoreRequest("vol", 3, destination), SMALL_RUNS) as session:
        export = session.export

        def write_ahead(done: int, total: int) -> None:  # the copier's thread, between two runs
            block = min(done * 2 + 1, SIZE // BS - 2)
            data = bytes([done % 251 + 1]) * (BS + 7)
            export.write(block * BS + 3, data)
            expected[block * BS + 3 : block * BS + 3 + len(data)] = data

        session.start(write_ahead)
        assert session.done.wait(30) and session.error is None
    assert destination.read_bytes() == bytes(expected)


def test_a_stopped_restore_resumes_and_stale_blocks_get_the_point_again(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    destination = tmp_path / "dest.img"
    request = RestoreRequest("vol", 2, destination)
    with restoring(harness.root / "state", request, SMALL_RUNS) as session:
        halfway = threading.Event()
        session.start(lambda done, total: halfway.set() if done * 2 >= total else None)
        assert halfway.wait(30)
    assert not load_record(destination).complete  # type: ignore[union-attr]
    with destination.open("r+b") as image:  # as after a crash: data the bitmap does not cover
        image.seek(SIZE - BS)
        image.write(b"\xee" * BS)
    relocate(harness.root / "state", request)
    assert destination.read_bytes() == harness.model.points[2]
    assert relocated_path(destination).exists()


def test_nbd_clients_read_the_point_and_write_through_the_restore(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    destination = tmp_path / "dest.img"
    expected = bytearray(harness.model.points[2])
    slow = CopyOptions(run_bytes=BS, sync_bytes=64 * BS)
    with (
        restoring(harness.root / "state", RestoreRequest("vol", 2, destination), slow) as session,
        ExportThread(ThreadedExport(session.export)) as thread,
    ):
        session.start()
        done = qemu_io(thread.url(), "write -P 0x5a 1000 10000", "flush")
        assert not qemu_io_failed(done), done.stdout + done.stderr
        expected[1000:11000] = b"\x5a" * 10000
        assert nbdcopy(thread.url(), tmp_path / "read.raw") == bytes(expected)
        assert session.done.wait(30) and session.error is None
        assert nbdcopy(thread.url(), tmp_path / "after.raw") == bytes(expected)
    assert destination.read_bytes() == bytes(expected)


def test_the_read_profile_is_copied_first(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    destination = tmp_path / "dest.img"
    profile = BitMap(range(200, 230)) | BitMap([3])
    seen: list[BitMap] = []
    with restoring(
        harness.root / "state", RestoreRequest("vol", 1, destination), SMALL_RUNS, first=lambda: profile
    ) as session:
        session.start(lambda done, total: seen.append(BitMap(session.destination.relocated)))
        assert session.done.wait(30) and session.error is None
        staged = session.prestaged_blocks
    assert destination.read_bytes() == harness.model.points[1]
    assert 0 < staged <= len(profile)
    staged_group = widened(profile, SMALL_RUNS.run_bytes // BS)  # the profile's blocks and their run neighbours
    others = next(i for i, relocated in enumerate(seen) if len(relocated - staged_group) > 0)
    assert others > 0 and seen[others - 1] >= seen[-1] & profile, "a block outside the profile came first"


def test_a_destination_of_something_else_is_refused(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    state = harness.root / "state"
    other = tmp_path / "other.img"
    other.write_bytes(b"precious")
    with pytest.raises(RestoreError, match="exists and is not a restore"):
        restoring(state, RestoreRequest("vol", 2, other)).__enter__()
    assert other.read_bytes() == b"precious"
    destination = tmp_path / "dest.img"
    relocate(state, RestoreRequest("vol", 2, destination))
    with pytest.raises(RestoreError, match="recovery point 2, not volume 'vol' recovery point 1"):
        restoring(state, RestoreRequest("vol", 1, destination)).__enter__()


def test_a_complete_restore_is_served_without_the_mirror(make_harness, tmp_path: Path) -> None:
    harness = three_points(make_harness)
    destination = tmp_path / "dest.img"
    relocate(harness.root / "state", RestoreRequest("vol", 2, destination))
    with restoring(tmp_path / "no-state", RestoreRequest("vol", 2, destination)) as session:
        assert session.done.is_set() and session.export.complete
        assert session.export.read(0, SIZE) == harness.model.points[2]


def test_the_copier_waits_for_clients_to_pause() -> None:
    activity = ClientActivity(quiet=0.01, max_wait=0.5)
    assert activity.wait_quiet() < 0.05, "idle: no wait"
    with activity.request():
        assert activity.wait_quiet() >= 0.5, "busy: waits up to max_wait"
    holding = threading.Event()

    def client() -> None:
        with activity.request():
            holding.set()
            time.sleep(0.1)

    thread = threading.Thread(target=client)
    thread.start()
    assert holding.wait(5)
    waited = activity.wait_quiet()
    thread.join()
    assert 0.05 <= waited < 0.5, "released once the request ended and the clients paused"
