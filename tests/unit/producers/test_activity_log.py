"""The durable activity log: bounded, durable before the image changes, and a region leaves only
after the hook made the image and dirty bitmap durable, with nothing unshipped and nothing
touching it since (issue 13 item 6)."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from tidemark.producers.activity_log import ActivityLog
from tidemark.producers.region_slots import FREE, SLOT

REGION = 1 << 20


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def on_disk(path: Path) -> set[int]:
    """The regions in the log's file (slots of little-endian int64, -1 free)."""
    return {region for (region,) in SLOT.iter_unpack(path.read_bytes()) if region != FREE}


def test_a_region_is_durable_before_the_image_changes_and_steady_writes_cost_no_write(tmp_path: Path) -> None:
    path = tmp_path / "activity.log"
    hooks: list[int] = []
    log = ActivityLog(path, REGION, durable_hook=lambda: hooks.append(1))
    log.enter(3 * REGION + 5, 10)
    assert on_disk(path) == {3}
    mtime = path.stat().st_mtime_ns
    for _ in range(100):
        log.enter(3 * REGION, 4096)
        log.hold(3 * REGION, 4096)
        log.release(3 * REGION, 4096)
    assert path.stat().st_mtime_ns == mtime, "writes to a hot region rewrote the log"
    assert hooks == []


def test_a_run_holds_and_enters_like_one_call_per_range(tmp_path: Path) -> None:
    """`hold_all` counts each range (a region twice in the run is held twice), `enter_all` holds
    nothing; the releases of every range leave the regions free to go."""
    clock = Clock()
    log = ActivityLog(tmp_path / "al", REGION, durable_hook=lambda: None, idle_seconds=5, clock=clock)
    run = [(0, 4096), (REGION - 4096, 8192), (5 * REGION, 4096), (0, 4096), (7 * REGION, 0)]
    log.enter_all([(9 * REGION, 4096)])
    log.hold_all(run)
    assert on_disk(tmp_path / "al") == {0, 1, 5, 9}
    assert log.unshipped_regions() == 3
    log.release_all(run[:3])
    assert log.unshipped_regions() == 1, "region 0 is held twice in the run"
    log.release_all(run[3:])
    assert log.unshipped_regions() == 0
    clock.now += 60
    assert log.retire_idle() == 4
    assert on_disk(tmp_path / "al") == set()


def test_a_region_with_unshipped_events_never_leaves(tmp_path: Path) -> None:
    clock = Clock()
    hooks: list[float] = []
    log = ActivityLog(
        tmp_path / "al", REGION, durable_hook=lambda: hooks.append(clock.now), idle_seconds=5, clock=clock
    )
    log.hold(0, REGION)
    log.hold(REGION, 4096)
    log.release(REGION, 4096)
    clock.now += 60
    assert log.retire_idle() == 1
    assert on_disk(tmp_path / "al") == {0}
    assert hooks, "a region left without the image and the dirty bitmap made durable first"
    log.release(0, REGION)
    clock.now += 60
    assert log.retire_idle() == 1
    assert on_disk(tmp_path / "al") == set()


def test_a_region_touched_while_the_hook_runs_stays(tmp_path: Path) -> None:
    clock = Clock()
    log: ActivityLog

    def hook() -> None:
        log.enter(2 * REGION, 4096)  # a write arrives while the image is being synced

    log = ActivityLog(tmp_path / "al", REGION, durable_hook=hook, idle_seconds=5, clock=clock)
    log.enter(REGION, 4096)
    log.enter(2 * REGION, 4096)
    clock.now += 10
    assert log.retire_idle() == 1
    assert on_disk(tmp_path / "al") == {2}


def test_recently_touched_regions_are_not_idle(tmp_path: Path) -> None:
    clock = Clock()
    log = ActivityLog(tmp_path / "al", REGION, idle_seconds=5, clock=clock)
    log.enter(0, 4096)
    clock.now += 4
    assert log.retire_idle() == 0
    clock.now += 2
    assert log.retire_idle() == 1


def test_a_full_log_evicts_its_coldest_idle_region_for_a_new_one(tmp_path: Path) -> None:
    clock = Clock()
    hooks: list[int] = []
    log = ActivityLog(
        tmp_path / "al", REGION, capacity=3, durable_hook=lambda: hooks.append(1), guard_seconds=1, clock=clock
    )
    for region in (5, 6, 7):
        log.enter(region * REGION, 4096)
        clock.now += 2
    log.enter(8 * REGION, 4096)
    assert on_disk(tmp_path / "al") == {6, 7, 8}
    assert len(hooks) == 1
    assert len(log) == 3


def test_a_full_log_of_busy_regions_makes_a_new_region_wait_until_one_is_shipped(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "al", REGION, capacity=2, guard_seconds=0.05)
    log.hold(0, 4096)
    log.hold(REGION, 4096)
    entered = threading.Event()

    def write_elsewhere() -> None:
        log.enter(9 * REGION, 4096)
        entered.set()

    writer = threading.Thread(target=write_elsewhere)
    writer.start()
    assert not entered.wait(0.3), "a new region entered a full log of unshipped regions"
    log.release(REGION, 4096)
    assert entered.wait(5), "the write did not proceed once a region was shipped"
    writer.join()
    assert on_disk(tmp_path / "al") == {0, 9}


def test_a_write_spanning_more_regions_than_the_log_holds_is_refused_clearly(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "al", REGION, capacity=2)
    with pytest.raises(Exception, match="capacity"):
        log.enter(0, 3 * REGION)


def test_close_empties_the_log_only_when_nothing_is_unshipped(tmp_path: Path) -> None:
    path = tmp_path / "al"
    log = ActivityLog(path, REGION)
    log.hold(0, 4096)
    log.enter(REGION, 4096)
    assert not log.close()
    assert on_disk(path) == {0, 1}
    log = ActivityLog(path, REGION)
    assert set(log.recovered_regions()) == {0, 1}
    log.hold(5 * REGION, 4096)
    log.release(5 * REGION, 4096)
    assert log.close()
    assert on_disk(path) == set()


def test_freed_slots_are_reused_and_the_file_keeps_its_size(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "al"
    log = ActivityLog(path, REGION, capacity=4, idle_seconds=1, clock=clock)
    size = path.stat().st_size
    for round_ in range(5):
        log.enter(round_ * 10 * REGION, 3 * REGION)
        assert on_disk(path) == {round_ * 10, round_ * 10 + 1, round_ * 10 + 2}
        clock.now += 2
        assert log.retire_idle() == 3
    assert path.stat().st_size == size == 4 * SLOT.size
    assert on_disk(path) == set()


def test_a_crashed_tracker_leaves_its_regions_for_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "al"
    log = ActivityLog(path, REGION)
    log.hold(7 * REGION, 2 * REGION)
    del log  # a crash: nothing closed
    reopened = ActivityLog(path, REGION)
    assert set(reopened.recovered_regions()) == {7, 8}
    reopened.forget(reopened.recovered_regions())
    assert on_disk(path) == set()


def test_a_file_of_another_format_reads_as_at_most_extra_regions(tmp_path: Path) -> None:
    path = tmp_path / "al"
    path.write_bytes(SLOT.pack(-5) + SLOT.pack(1 << 40) + SLOT.pack(2) + b"\x01\x02\x03")
    assert set(ActivityLog(path, REGION).recovered_regions()) == {2}


def test_hold_of_one_range_leaves_the_state_hold_all_leaves(tmp_path: Path) -> None:
    """`hold`'s one-region path and `release_all` keep the counts and touches of the general path."""
    rng = random.Random(7)
    one = ActivityLog(tmp_path / "one.log", REGION, capacity=64, clock=Clock())
    many = ActivityLog(tmp_path / "many.log", REGION, capacity=64, clock=Clock())
    held: list[tuple[int, int]] = []
    for _ in range(400):
        offset = rng.randrange(0, 40 * REGION, 4096)
        length = rng.choice([0, 4096, 8192, REGION, 3 * REGION])
        one.hold(offset, length)
        many.hold_all([(offset, length)])
        held.append((offset, length))
    for log in (one, many):
        assert sum(log._pending.values()) > 0
    assert one._pending == many._pending
    assert one._touched == many._touched and one._touches == many._touches
    assert list(one._durable) == list(many._durable)
    rng.shuffle(held)
    half = len(held) // 2
    for offset, length in held[:half]:
        one.release(offset, length)
    many.release_all(held[:half])
    assert one._pending == many._pending
    one.release_all(held[half:])
    for offset, length in held[half:]:
        many.release(offset, length)
    assert one._pending == many._pending == {}
