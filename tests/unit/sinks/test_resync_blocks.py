"""Resync without Kafka: gap detection state, hole-aware data ranges, copying only what differs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tidemark.core.image_io import data_ranges
from tidemark.sinks.exceptions import ChangeSetGapError, ResyncNeededError
from tidemark.sinks.ops.resync import _record, copy_differing
from tidemark.sinks.reading.stream_head import StreamHead
from tidemark.sinks.storage.data_ranges import union_aligned
from tidemark.sinks.storage.progress import RESYNC_NEEDED

from .conftest import MakeHarness
from .stream_model import StreamModel

BS = 4096


def test_a_gap_records_resync_needed_and_blocks_applying(make_harness: MakeHarness) -> None:
    model = StreamModel("vol-gap", 64 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, b"1" * BS)
    h.feed(model.seal(cut=True))
    model.write(0, b"2" * BS)
    model.seal()  # change set 2 never reaches the mirror (retention)
    model.write(BS, b"3" * BS)
    with pytest.raises(ChangeSetGapError, match="2..2 are missing"):
        h.feed(model.seal())
    assert h.mirror.progress.state == RESYNC_NEEDED and h.mirror.progress.changeset_id == 1
    h.close()
    h.open()  # the state survives a restart
    with pytest.raises(ResyncNeededError, match="tidemark resync"):
        h.mirror.require_not_resync_needed()


def test_data_ranges_see_holes(tmp_path: Path) -> None:
    path = tmp_path / "sparse.img"
    with path.open("wb") as handle:
        handle.truncate(64 << 20)
        os.pwrite(handle.fileno(), b"x" * BS, 10 << 20)
        os.pwrite(handle.fileno(), b"y" * BS, 40 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        ranges = list(data_ranges(fd, 0, 64 << 20))
    finally:
        os.close(fd)
    assert sum(end - start for start, end in ranges) < 4 << 20
    assert any(start <= 10 << 20 < end for start, end in ranges)
    assert any(start <= 40 << 20 < end for start, end in ranges)
    assert union_aligned([(1, 2), (BS + 5, 2 * BS), (3 * BS, 4 * BS)], BS, 8 * BS) == [(0, 2 * BS), (3 * BS, 4 * BS)]


def test_copy_differing_writes_only_differing_blocks_and_keeps_old_points(
    make_harness: MakeHarness, tmp_path: Path
) -> None:
    model = StreamModel("vol-copy", 256 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, os.urandom(16 * BS))
    h.feed(model.seal(cut=True))
    at_rp_1 = h.image()
    source_image = bytearray(at_rp_1)
    source_image[4 * BS : 6 * BS] = os.urandom(2 * BS)  # changed
    source_image[200 * BS : 201 * BS] = b"z" * BS  # new data where the mirror has a hole
    source_image[8 * BS : 9 * BS] = bytes(BS)  # zeroed
    source = tmp_path / "source.img"
    source.write_bytes(bytes(source_image))

    report = copy_differing(h.mirror, source)
    assert report.copied_blocks == 4
    assert h.image() == bytes(source_image)
    assert report.skipped_bytes > 0 or report.scanned_bytes == 256 * BS
    assert bytes(h.mirror.view(1).read(0, 256 * BS)) == at_rp_1, "undo keeps recovery point 1"


def test_a_resync_follows_the_generation_of_the_set_it_resumes_after(make_harness: MakeHarness, tmp_path: Path) -> None:
    """Resynced to a set sealed under generation 2, the mirror refuses older primaries' sets from there
    on, as if it had applied that set (before, its generation stayed where it was)."""
    model = StreamModel("vol-gen", 16 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, b"1" * BS)
    h.feed(model.seal(cut=True))
    source = tmp_path / "source.img"
    source.write_bytes(h.image())
    head = StreamHead(changeset_id=7, seq_last=40, sealed_at=0, rp_id=None, partition=0, next_offset=99, end=120,
                      generation=2)  # fmt: skip
    _record(h.mirror, head, source)
    assert (h.mirror.progress.changeset_id, h.mirror.progress.generation) == (7, 2)
