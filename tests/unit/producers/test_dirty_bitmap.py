"""The durable dirty bitmap: blocks added and discarded as any iterable, and kept across reopen."""

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
    assert list(dirty.snapshot()) == [4, 10, 11, 18, 19]
    assert list(DirtyBitmap(path).snapshot()) == [4, 10, 11, 18, 19]


def test_discarding_everything_leaves_an_empty_bitmap_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "dirty.bitmap"
    dirty = DirtyBitmap(path)
    dirty.add(range(0, 100))
    dirty.discard(range(0, 100))
    assert len(dirty) == 0 and len(DirtyBitmap(path)) == 0
