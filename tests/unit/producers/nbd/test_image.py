"""RawImage on a real file: holes from SEEK_DATA/SEEK_HOLE, zeroing by the file system, prefetch."""

from __future__ import annotations

import os
from pathlib import Path

from tidemark.producers.nbd.image import HOLE, MAX_EXTENTS, RawImage

MIB = 1024 * 1024
SIZE = 8 * MIB


def image(tmp_path: Path) -> RawImage:
    path = tmp_path / "image.raw"
    path.write_bytes(b"")
    os.truncate(path, SIZE)
    return RawImage(path, SIZE, "vol1")


def allocated(raw: RawImage) -> int:
    return raw.path.stat().st_blocks * 512


def test_extents_report_holes_and_data(tmp_path: Path) -> None:
    raw = image(tmp_path)
    raw.write(2 * MIB, b"\x01" * MIB)
    assert raw.extents(0, SIZE) == [(2 * MIB, HOLE), (MIB, 0), (5 * MIB, HOLE)]
    assert raw.extents(2 * MIB + 4096, 8192) == [(8192, 0)]
    assert raw.extents(MIB, 2 * MIB) == [(MIB, HOLE), (MIB, 0)]
    raw.close()


def test_extents_stop_at_the_limit(tmp_path: Path) -> None:
    raw = image(tmp_path)
    for block in range(0, 2 * MAX_EXTENTS + 4, 2):
        raw.write(block * 4096, b"\x01" * 4096)
    found = raw.extents(0, SIZE)
    assert len(found) == MAX_EXTENTS and sum(length for length, _ in found) < SIZE
    raw.close()


def test_zeroing_uses_the_file_system_and_keeps_allocation_when_asked(tmp_path: Path) -> None:
    raw = image(tmp_path)
    raw.write(0, b"\x07" * 2 * MIB)
    assert raw.zeroes_fast(may_punch=True) and raw.zeroes_fast(may_punch=False)  # ext4 has both
    raw.write_zeroes(0, MIB, may_punch=True)
    assert raw.extents(0, 2 * MIB) == [(MIB, HOLE), (MIB, 0)]
    before = allocated(raw)
    raw.write_zeroes(MIB, MIB, may_punch=False)
    assert allocated(raw) == before, "NBD_CMD_FLAG_NO_HOLE must keep the range allocated"
    assert raw.read(0, 2 * MIB) == bytes(2 * MIB)
    raw.prefetch(0, MIB)
    raw.close()
