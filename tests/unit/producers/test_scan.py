from __future__ import annotations

import random
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidemark.producers.exceptions import ImageSizeError, TrackerError
from tidemark.producers.scan import Scanner, ScanOptions

from . import sparse
from .tracker_double import RecordingTracker, SimulatedCrash

MIB = 1024 * 1024
BS = 4096
FAST = ScanOptions(chunk_bytes=1 * MIB, latency_threshold_ms=None)


def _scan(tracker: RecordingTracker, image: Path, state: Path, options: ScanOptions = FAST):
    with Scanner(tracker, image, state, options) as scanner:
        return scanner.run_pass(progress=False)


def _random_blocks(rng: random.Random, count: int) -> bytes:
    return rng.randbytes(count * BS)


def test_seed_then_one_percent_change_publishes_exactly_those_blocks(tmp_path: Path) -> None:
    size = 256 * MIB
    image = sparse.create(tmp_path / "disk.img", size)
    rng = random.Random(1)
    for start in (0, 40 * MIB, 200 * MIB):
        sparse.write(image, start, _random_blocks(rng, 2048))
    seed = RecordingTracker(size, BS)
    first = _scan(seed, image, tmp_path / "state")
    assert first.seeding and first.completed
    assert seed.written_blocks() == {b for s in (0, 40 * MIB, 200 * MIB) for b in range(s // BS, s // BS + 2048)}

    blocks = size // BS
    changed = set(rng.sample(range(blocks), blocks // 100))
    for block in changed:
        sparse.write(image, block * BS, _random_blocks(rng, 1))
    second = RecordingTracker(size, BS)
    stats = _scan(second, image, tmp_path / "state")
    assert not stats.seeding and stats.completed
    assert second.written_blocks() == changed
    assert not second.zeroed_blocks()
    assert stats.changed_blocks == len(changed)
    assert stats.bytes_published == len(changed) * BS

    third = RecordingTracker(size, BS)
    assert _scan(third, image, tmp_path / "state").changed_blocks == 0
    assert third.events == []


def test_holes_are_skipped_and_only_data_is_published(tmp_path: Path) -> None:
    size = 1024 * MIB
    image = sparse.create(tmp_path / "big.img", size)
    rng = random.Random(2)
    data_blocks = {7, 8, 9, 100_000, 262_143}
    for block in data_blocks:
        sparse.write(image, block * BS, _random_blocks(rng, 1))
    tracker = RecordingTracker(size, BS)
    stats = _scan(tracker, image, tmp_path / "state")
    assert tracker.written_blocks() == data_blocks
    assert stats.blocks_scanned < size // BS // 100, "holes must not be read"
    assert stats.hole_bytes_skipped + stats.blocks_scanned * BS == size
    with image.open("rb") as handle:
        for event in tracker.events:
            handle.seek(event.offset)
            assert event.data == handle.read(event.length)


def test_punched_hole_over_data_publishes_zero(tmp_path: Path) -> None:
    size = 16 * MIB
    image = sparse.create(tmp_path / "disk.img", size)
    sparse.write(image, 1 * MIB, _random_blocks(random.Random(3), 64))
    _scan(RecordingTracker(size, BS), image, tmp_path / "state")
    sparse.punch(image, 1 * MIB + 8 * BS, 4 * BS)
    tracker = RecordingTracker(size, BS)
    stats = _scan(tracker, image, tmp_path / "state")
    first = (1 * MIB) // BS + 8
    assert tracker.zeroed_blocks() == set(range(first, first + 4))
    assert [e.op for e in tracker.events] == ["ZERO"]
    assert stats.zeroed_blocks == 4 and stats.changed_blocks == 0

    again = RecordingTracker(size, BS)
    _scan(again, image, tmp_path / "state")
    assert again.events == [], "a hole already published as zeros is unchanged"


@pytest.mark.parametrize("in_future", [False, True], ids=["submit-raises", "future-fails"])
def test_crash_mid_pass_republishes_unconfirmed_blocks(tmp_path: Path, in_future: bool) -> None:
    size = 8 * MIB
    image = sparse.create(tmp_path / "disk.img", size)
    sparse.write(image, 0, _random_blocks(random.Random(4), size // BS))
    options = ScanOptions(
        chunk_bytes=256 * 1024, max_extent_bytes=64 * 1024, latency_threshold_ms=None, chunks_in_flight=2
    )
    crashing = RecordingTracker(size, BS, fail_at=40, fail_in_future=in_future)
    with pytest.raises(SimulatedCrash):
        _scan(crashing, image, tmp_path / "state", options)
    lost = {b for e in crashing.failed for b in range(e.offset // BS, (e.offset + e.length) // BS)}
    assert lost

    retry = RecordingTracker(size, BS)
    stats = _scan(retry, image, tmp_path / "state", options)
    assert stats.seeding, "an unfinished seeding pass seeds again"
    assert lost <= retry.written_blocks()
    assert crashing.written_blocks() | retry.written_blocks() == set(range(size // BS))
    assert len(retry.written_blocks()) < size // BS, "confirmed chunks are not published again"
    mirror = bytearray(size)
    crashing.apply_to(mirror)
    retry.apply_to(mirror)
    assert bytes(mirror) == image.read_bytes()


def test_high_latency_backs_off_and_reports_throttled_time(tmp_path: Path) -> None:
    size = 4 * MIB
    image = sparse.create(tmp_path / "disk.img", size)
    sparse.write(image, 0, bytes(range(256)) * (size // 256))
    slept: list[float] = []
    options = ScanOptions(chunk_bytes=256 * 1024, latency_threshold_ms=0.0)
    with Scanner(RecordingTracker(size, BS), image, tmp_path / "state", options, sleep=slept.append) as scanner:
        stats = scanner.run_pass(progress=False)
    assert len(slept) == size // (256 * 1024)
    assert stats.throttled_seconds == pytest.approx(sum(slept))
    assert slept == sorted(slept), "the back-off grows while latency stays high"


def test_no_threshold_never_sleeps(tmp_path: Path) -> None:
    image = sparse.create(tmp_path / "disk.img", MIB)
    sparse.write(image, 0, bytes(MIB))
    slept: list[float] = []
    with Scanner(RecordingTracker(MIB, BS), image, tmp_path / "state", FAST, sleep=slept.append) as scanner:
        assert scanner.run_pass(progress=False).throttled_seconds == 0
    assert slept == []


def test_stopped_pass_is_incomplete_and_seeding_resumes(tmp_path: Path) -> None:
    image = sparse.create(tmp_path / "disk.img", MIB)
    sparse.write(image, 0, _random_blocks(random.Random(5), MIB // BS))
    stop = threading.Event()
    stop.set()
    with Scanner(RecordingTracker(MIB, BS), image, tmp_path / "state", FAST) as scanner:
        stats = scanner.run_pass(stop, progress=False)
    assert not stats.completed and stats.blocks_scanned == 0
    tracker = RecordingTracker(MIB, BS)
    assert _scan(tracker, image, tmp_path / "state").seeding
    assert tracker.written_blocks() == set(range(MIB // BS))


def test_image_size_must_equal_volume_size(tmp_path: Path) -> None:
    image = sparse.create(tmp_path / "disk.img", MIB)
    with pytest.raises(ImageSizeError, match=f"image {image} is {MIB} bytes but volume 'vol' is {2 * MIB} bytes"):
        Scanner(RecordingTracker(2 * MIB, BS), image, tmp_path / "state")


def test_map_built_for_another_block_size_is_refused(tmp_path: Path) -> None:
    image = sparse.create(tmp_path / "disk.img", MIB)
    _scan(RecordingTracker(MIB, BS), image, tmp_path / "state")
    with pytest.raises(TrackerError, match="remove .* to seed again"):
        Scanner(RecordingTracker(MIB, 2 * BS), image, tmp_path / "state")


VOLUME_BLOCKS = 64
_change = st.tuples(
    st.integers(0, VOLUME_BLOCKS - 1),
    st.sampled_from(["random", "same", "zeros", "punch"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    initial=st.sets(st.integers(0, VOLUME_BLOCKS - 1), max_size=VOLUME_BLOCKS),
    changes=st.lists(_change, max_size=30),
    seed=st.integers(0, 2**32),
)
def test_scan_publishes_exactly_the_changed_block_set(
    initial: set[int], changes: list[tuple[int, str]], seed: int
) -> None:
    size = VOLUME_BLOCKS * BS
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        image = sparse.create(Path(folder) / "disk.img", size)
        for block in sorted(initial):
            sparse.write(image, block * BS, _random_blocks(rng, 1))
        options = ScanOptions(chunk_bytes=8 * BS, max_extent_bytes=4 * BS, latency_threshold_ms=None)
        seeding = RecordingTracker(size, BS)
        _scan(seeding, image, Path(folder) / "state", options)
        before = image.read_bytes()

        for block, kind in changes:
            if kind == "punch":
                sparse.punch(image, block * BS, BS)
                continue
            current = image.read_bytes()[block * BS : (block + 1) * BS]
            payload = {"random": _random_blocks(rng, 1), "same": current, "zeros": bytes(BS)}[kind]
            sparse.write(image, block * BS, payload)
        after = image.read_bytes()
        expected = {b for b in range(VOLUME_BLOCKS) if before[b * BS : (b + 1) * BS] != after[b * BS : (b + 1) * BS]}

        tracker = RecordingTracker(size, BS)
        _scan(tracker, image, Path(folder) / "state", options)
        assert tracker.written_blocks() | tracker.zeroed_blocks() == expected
        assert not tracker.written_blocks() & tracker.zeroed_blocks()
        mirror = bytearray(size)
        seeding.apply_to(mirror)
        tracker.apply_to(mirror)
        assert bytes(mirror) == after
