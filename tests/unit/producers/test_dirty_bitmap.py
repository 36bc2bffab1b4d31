"""The dirty bitmap: blocks added and discarded as any iterable, persisted lazily, kept across reopen."""

from __future__ import annotations

from pathlib import Path

from tidemark.producers.dirty_bitmap import DirtyBitmap


def test_blocks_added_and_discarded_as_ranges_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "dirty.bitmap"
    dirty = DirtyBitmap(path)
    dirty.add(range(10, 20))
    dirty.add([3, 4])
    dirty.discard(range(12, 18))  # the tracker's resync discards a run as a range
    dirty.discard([3])
    dirty.persist()
    assert list(dirty.snapshot()) == [4, 10, 11, 18, 19]
    assert list(DirtyBitmap(path).snapshot()) == [4, 10, 11, 18, 19]


def test_discarding_everything_leaves_an_empty_bitmap_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "dirty.bitmap"
    dirty = DirtyBitmap(path)
    dirty.add(range(100))
    dirty.persist()
    dirty.discard(range(100))
    dirty.persist()
    assert len(dirty) == 0 and len(DirtyBitmap(path)) == 0


def test_changes_reach_the_file_only_on_persist(tmp_path: Path) -> None:
    path = tmp_path / "dirty.bitmap"
    dirty = DirtyBitmap(path)
    dirty.add_range(5, 9)
    assert len(DirtyBitmap(path)) == 0, "add wrote the file (an fsync per write)"
    dirty.persist()
    assert list(DirtyBitmap(path).snapshot()) == [5, 6, 7, 8]


def test_a_run_in_flight_stays_in_the_file_until_delivered(tmp_path: Path) -> None:
    path = tmp_path / "dirty.bitmap"
    dirty = DirtyBitmap(path)
    dirty.add([1, 2, 3, 7, 8])
    dirty.persist()
    assert dirty.take_run(2) == (1, 2)
    assert dirty.take_run(10) == (3, 1)
    dirty.persist()
    assert list(DirtyBitmap(path).snapshot()) == [1, 2, 3, 7, 8], "a run in flight left the durable file"
    assert len(dirty) == 2 and dirty.unshipped == 5
    dirty.settle_run(1, 2, delivered=True)
    dirty.settle_run(3, 1, delivered=False)
    dirty.persist()
    assert list(DirtyBitmap(path).snapshot()) == [3, 7, 8]
    assert dirty.take_run(10) == (3, 1)


def test_a_block_written_again_while_in_flight_stays_dirty_after_delivery(tmp_path: Path) -> None:
    dirty = DirtyBitmap(tmp_path / "dirty.bitmap")
    dirty.add_range(0, 4)
    assert dirty.take_run(4) == (0, 4)
    dirty.add([2])
    dirty.settle_run(0, 4, delivered=True)
    assert list(dirty.snapshot()) == [2]
