"""`holes.segments` on real sparse files: block-aligned, in order, covering the image, and every
block holding a data byte lies in a data segment."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.producers.holes import segments

from . import sparse

BS = 4096
BLOCKS = 128


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, BLOCKS * BS - 1), st.integers(1, 3 * BS)), max_size=6))
def test_segments_cover_the_image_and_every_data_byte(
    tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[int, int]]
) -> None:
    size = BLOCKS * BS
    image = sparse.create(tmp_path_factory.mktemp("holes") / "disk.img", size)
    for offset, length in writes:
        sparse.write(image, offset, b"\xff" * min(length, size - offset))
    fd = os.open(image, os.O_RDONLY)
    try:
        found = list(segments(fd, size, BS))
    finally:
        os.close(fd)
    assert [s.offset for s in found] == [0] + [s.end for s in found[:-1]], "segments must follow each other"
    assert found[-1].end == size if found else size == 0
    assert all(s.offset % BS == 0 and (s.end % BS == 0 or s.end == size) and s.length > 0 for s in found)
    content = image.read_bytes()
    for segment in found:
        if not segment.data:
            assert content[segment.offset : segment.end].count(0) == segment.length, "data inside a hole segment"
    assert not any(a.data is False and b.data is False for a, b in zip(found, found[1:], strict=False))
