"""The undo store streams what revert and point views need, and keeps zero pre-images empty."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pyroaring import BitMap

from tidemark.sinks.storage.undo_store import RUN_BLOCKS, UndoStore, undo_key

from .conftest import MakeHarness
from .stream_model import StreamModel

BS = 512


def _blocks_of(block: Callable[[int], bytes]) -> Callable[[int, int], bytes]:
    """A run reader (what `save_pre_images` takes) from the content of each block."""
    return lambda first, count: b"".join(block(b) for b in range(first, first + count))


def test_zero_pre_images_are_stored_empty_and_read_as_zeros(tmp_path: Path) -> None:
    with UndoStore(tmp_path / "undo", BS) as undo:
        content = bytes(BS) + b"\x07" * BS
        assert undo.save_pre_images(3, [0, 1], lambda first, count: content[first * BS : (first + count) * BS]) == 2
        assert undo._db.get(undo_key(3, 0)) == b""  # the byte layout: empty value = all zeros
        assert undo.get(3, 0) == bytes(BS) and undo.get(3, 1) == b"\x07" * BS


def test_contents_at_takes_the_smallest_base_once_per_block(tmp_path: Path) -> None:
    with UndoStore(tmp_path / "undo", BS) as undo:
        undo.save_pre_images(2, [5, 6], _blocks_of(lambda b: bytes([b]) * BS))
        undo.save_pre_images(3, [6, 7], _blocks_of(lambda b: bytes([b + 100]) * BS))
        assert list(undo.contents_at(2)) == [(5, b"\x05" * BS), (6, b"\x06" * BS), (7, bytes([107]) * BS)]
        assert list(undo.contents_at(3)) == [(6, bytes([106]) * BS), (7, bytes([107]) * BS)]
        assert undo.changed_since(2) == BitMap([5, 6, 7])
        assert [(base, list(blocks)) for base, blocks in undo.blocks_by_base(2)] == [(2, [5, 6]), (3, [6, 7])]


def test_a_seed_after_an_empty_point_keeps_only_empty_pre_images(make_harness: MakeHarness) -> None:
    model = StreamModel("vol", 256 * BS, block_size=BS)
    h = make_harness(model)
    h.feed(model.seal(cut=True))  # point 1: the empty volume
    model.write(0, b"s" * 256 * BS)  # the seed
    h.feed(model.seal(cut=True))
    assert all(value == b"" for value in h.mirror.undo._db.values())
    assert h.mirror.view(1).read(0, model.size) == bytes(model.size)
    report = h.mirror.revert(1)
    assert report.blocks == 256 and h.image() == bytes(model.size)


def test_a_run_saves_only_its_blocks_not_yet_saved_and_keeps_the_first_pre_images(tmp_path: Path) -> None:
    reads: list[tuple[int, int]] = []

    def reader(fill: int) -> Callable[[int, int], bytes]:
        def read(first: int, count: int) -> bytes:
            reads.append((first, count))
            return bytes([fill]) * BS * count

        return read

    with UndoStore(tmp_path / "undo", BS) as undo:
        assert undo.save_pre_images(1, [2, 3], reader(1)) == 2
        assert undo.save_pre_images(1, [1, 2, 3, 4, 9], reader(2)) == 3
        assert [undo.get(1, b) for b in (1, 2, 3, 4, 9)] == [
            b"\x02" * BS,
            b"\x01" * BS,
            b"\x01" * BS,
            b"\x02" * BS,
            b"\x02" * BS,
        ]
        assert undo.save_pre_images(1, [2, 3], reader(3)) == 0
        assert reads == [(2, 2), (1, 4), (9, 1)]  # one read per run; none for a run saved whole
        long_run = range(100, 100 + RUN_BLOCKS + 5)
        assert undo.save_pre_images(2, long_run, reader(4)) == RUN_BLOCKS + 5
        assert reads[-2:] == [(100, RUN_BLOCKS), (100 + RUN_BLOCKS, 5)]
        assert undo.changed_since(2) == BitMap(long_run)
