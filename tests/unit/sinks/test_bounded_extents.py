"""The mirror decodes Extent data no further than the extent's declared length (bombs are refused)."""

from __future__ import annotations

import lz4.frame
import pytest
import zstandard

from tidemark.sinks.exceptions import InvalidChangeSetError

from .conftest import MakeHarness
from .stream_model import StreamModel

BS = 512
BOMB_BYTES = 64 << 20


def _bomb(compression: str) -> bytes:
    """64 MiB of zeros in a frame of a few KiB."""
    if compression == "LZ4":
        return lz4.frame.compress(bytes(BOMB_BYTES))
    return zstandard.ZstdCompressor(level=1).compress(bytes(BOMB_BYTES))


@pytest.mark.parametrize("compression", ["LZ4", "ZSTD"])
def test_an_extent_that_expands_past_its_length_is_refused_and_the_mirror_untouched(
    make_harness: MakeHarness, compression: str
) -> None:
    model = StreamModel("vol1", 64 * BS, block_size=BS, extent_bytes=4 * BS, compression=compression)
    h = make_harness(model)
    model.write(0, b"g" * BS)
    events = model.seal()
    kind, extent = events[0]
    bomb = (kind, dict(extent, data=_bomb(compression)))
    with pytest.raises(
        InvalidChangeSetError,
        match=f"DecodeBombError: volume 'vol1' extent 0 of change set 1: "
        f"{compression} data expands past its declared length {BS}",
    ):
        h.feed([bomb])
    with pytest.raises(InvalidChangeSetError, match="not whole"):
        h.feed(events[1:])
    assert h.mirror.progress.changeset_id == 0
    assert h.image() == bytes(model.size)


def test_a_truncated_frame_is_refused(make_harness: MakeHarness) -> None:
    model = StreamModel("vol1", 64 * BS, block_size=BS, extent_bytes=4 * BS, compression="LZ4")
    h = make_harness(model)
    model.write(0, b"t" * 4 * BS)
    events = model.seal()
    kind, extent = events[0]
    with pytest.raises(InvalidChangeSetError, match="DecompressError: .*truncated"):
        h.feed([(kind, dict(extent, data=extent["data"][:-6]))])
