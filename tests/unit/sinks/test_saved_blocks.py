"""The copy of overwritten blocks keeps the first content it saw, durably, and goes only on drop."""

from __future__ import annotations

import stat
from pathlib import Path

from tidemark.sinks.storage.saved_blocks import SavedBlocks

BS = 512


def test_a_rerun_keeps_the_content_from_before_the_first_attempt(tmp_path: Path) -> None:
    with SavedBlocks(tmp_path, "saved", 16 * BS, BS) as saved:
        saved.save(3, b"a" * BS)
        saved.commit()
    with SavedBlocks(tmp_path, "saved", 16 * BS, BS) as again:  # after a crash: block 3 was overwritten
        again.save(3, b"b" * BS)
        again.save(5, b"c" * BS)
        again.commit()
        assert (again.read(3), again.read(5), again.read(4)) == (b"a" * BS, b"c" * BS, bytes(BS))
        assert list(again.blocks) == [3, 5]
        for path in (again.image, again.bitmap):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        again.drop()
    assert not list(tmp_path.iterdir())
