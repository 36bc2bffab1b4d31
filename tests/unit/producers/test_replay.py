from __future__ import annotations

import os
from concurrent.futures import Future
from pathlib import Path

import pytest

from tidemark.core.blocks import Extent
from tidemark.producers.exceptions import ImageSizeError, TrackerError
from tidemark.producers.replay import map_write, replay
from tidemark.producers.traces import TraceRecord, read_trace

from .traces_dir import sample
from .tracker_double import RecordingTracker, SimulatedCrash

MIB = 1024 * 1024
VOLUME = 64 * MIB
BS = 4096


def _records(fmt: str) -> list[TraceRecord]:
    return list(read_trace(sample(fmt), fmt))


@pytest.mark.parametrize("fmt", ["msr", "systor", "disksim"])
def test_one_submit_per_write_record(fmt: str) -> None:
    records = _records(fmt)
    tracker = RecordingTracker(VOLUME, BS)
    stats = replay(tracker, records, seed=7, progress=False)
    writes = [r for r in records if r.is_write]
    assert stats.records == len(records)
    assert stats.writes == len(writes) == len(tracker.events) == stats.events
    assert stats.reads_skipped == len(records) - len(writes)
    assert stats.bytes_published == sum(e.length for e in tracker.events)
    expected = [map_write(r.offset, r.size, VOLUME, BS)[0] for r in writes]
    assert [Extent(e.offset, e.length) for e in tracker.events] == expected


def test_split_extents_give_one_submit_per_piece() -> None:
    records = _records("systor")
    tracker = RecordingTracker(VOLUME, BS)
    stats = replay(tracker, records, max_extent=2 * BS, progress=False)
    pieces = sum(-(-map_write(r.offset, r.size, VOLUME, BS)[0].length // (2 * BS)) for r in records if r.is_write)
    assert stats.events == len(tracker.events) == pieces > stats.writes
    assert max(e.length for e in tracker.events) == 2 * BS


def test_content_is_deterministic_per_seed() -> None:
    records = _records("msr")
    first, second, other = (RecordingTracker(VOLUME, BS) for _ in range(3))
    replay(first, records, seed=1, progress=False)
    replay(second, records, seed=1, progress=False)
    replay(other, records, seed=2, progress=False)
    assert first.events == second.events
    assert [e.data for e in first.events] != [e.data for e in other.events]


def test_image_holds_exactly_the_recorded_writes(tmp_path: Path) -> None:
    image = tmp_path / "source.img"
    image.write_bytes(b"")
    os.truncate(image, VOLUME)
    tracker = RecordingTracker(VOLUME, BS, image=image)
    stats = replay(tracker, _records("disksim"), image=image, seed=3, progress=False)
    assert len(tracker.intents) == stats.events
    mirror = bytearray(VOLUME)
    tracker.apply_to(mirror)
    assert image.read_bytes() == bytes(mirror)


def test_image_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "small.img"
    image.write_bytes(bytes(BS))
    with pytest.raises(ImageSizeError, match=f"image {image} is 4096 bytes but volume 'vol' is {VOLUME} bytes"):
        replay(RecordingTracker(VOLUME, BS), [], image=image)


@pytest.mark.parametrize(
    ("offset", "size", "extent", "clipped"),
    [
        (0, 512, Extent(0, BS), 0),
        (BS + 100, BS, Extent(BS, BS), 0),
        (VOLUME + 3 * BS, 2 * BS, Extent(3 * BS, 2 * BS), 0),
        (VOLUME - BS, 3 * BS, Extent(VOLUME - BS, BS), 2 * BS),
        (5 * VOLUME - 1, 1, Extent(VOLUME - BS, BS), 0),
    ],
)
def test_mapping_into_the_volume(offset: int, size: int, extent: Extent, clipped: int) -> None:
    assert map_write(offset, size, VOLUME, BS) == (extent, clipped)


def test_stats_count_mapping_effects() -> None:
    records = [
        TraceRecord(1, 0.0, True, VOLUME - BS, 3 * BS),
        TraceRecord(2, 0.0, True, VOLUME + 512, 512),
        TraceRecord(3, 0.0, False, 0, BS),
        TraceRecord(4, 0.0, True, 0, 0),
    ]
    stats = replay(RecordingTracker(VOLUME, BS), records, progress=False)
    assert (stats.writes, stats.reads_skipped, stats.empty_writes_skipped) == (2, 1, 1)
    assert (stats.clipped_writes, stats.clipped_bytes) == (1, 2 * BS)
    assert (stats.wrapped_writes, stats.widened_writes) == (1, 1)
    assert "modulo" in stats.mapping


class _FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _timed(times: list[float]) -> list[TraceRecord]:
    return [TraceRecord(n, t, True, n * BS, BS) for n, t in enumerate(times, start=1)]


def test_speed_scales_the_trace_clock() -> None:
    fake = _FakeTime()
    replay(RecordingTracker(VOLUME, BS), _timed([0.0, 1.0, 3.0]), speed=2.0, clock=fake.clock, sleep=fake.sleep)
    assert fake.slept == pytest.approx([0.5, 1.0])


def test_max_speed_never_sleeps() -> None:
    fake = _FakeTime()
    replay(RecordingTracker(VOLUME, BS), _timed([0.0, 50.0]), speed=None, clock=fake.clock, sleep=fake.sleep)
    assert fake.slept == []


def test_bad_speed_is_refused() -> None:
    with pytest.raises(TrackerError, match="positive factor"):
        replay(RecordingTracker(VOLUME, BS), [], speed=0)


class _LazyTracker(RecordingTracker):
    """Futures complete only when awaited, so the in-flight count is observable."""

    def __init__(self) -> None:
        super().__init__(VOLUME, BS)
        self.outstanding: set[Future[None]] = set()
        self.peak = 0

    def submit_write(self, offset: int, data: bytes) -> Future[None]:
        super().submit_write(offset, data)
        tracker = self

        class _Lazy(Future[None]):
            def result(self, timeout: float | None = None) -> None:
                if not self.done():
                    tracker.outstanding.discard(self)
                    self.set_result(None)
                return super().result(timeout)

        future = _Lazy()
        self.outstanding.add(future)
        self.peak = max(self.peak, len(self.outstanding))
        return future


def test_in_flight_submits_are_bounded_and_all_awaited() -> None:
    tracker = _LazyTracker()
    replay(tracker, _timed([0.0] * 50), max_in_flight=4)
    assert tracker.peak == 4
    assert not tracker.outstanding


def test_a_failed_submit_stops_the_replay() -> None:
    tracker = RecordingTracker(VOLUME, BS, fail_at=3, fail_in_future=True)
    with pytest.raises(SimulatedCrash):
        replay(tracker, _timed([0.0] * 10), max_in_flight=1)
    assert len(tracker.events) == 2
