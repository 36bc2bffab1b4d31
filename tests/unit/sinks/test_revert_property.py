"""Property: after any sequence of change sets and cuts, every retained recovery point can be read
and reverted to exactly, and a revert rewrites only the blocks changed since that point."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.sinks.storage.retention import Retention

from .harness import Harness
from .stream_model import StreamModel

BS = 512
BLOCKS = 32

write_op = st.tuples(
    st.integers(0, BLOCKS - 1),  # first block
    st.integers(1, 6),  # blocks
    st.one_of(st.none(), st.integers(1, 255)),  # None = ZERO, else the fill byte
)
change_set = st.tuples(st.lists(write_op, max_size=5), st.booleans())  # (writes, cut)
history = st.lists(change_set, min_size=1, max_size=12)


def _play(model: StreamModel, steps: list) -> tuple[list, dict[int, int], dict[int, set[int]]]:
    """Events of the whole history, rp -> its change set, and change set -> blocks it touched."""
    events: list = []
    rp_set: dict[int, int] = {}
    touched: dict[int, set[int]] = {}
    for writes, cut in steps:
        blocks: set[int] = set()
        for first, count, fill in writes:
            count = min(count, BLOCKS - first)
            if fill is None:
                model.zero(first * BS, count * BS)
            else:
                model.write(first * BS, bytes([fill]) * count * BS)
            blocks.update(range(first, first + count))
        events += model.seal(cut=cut)
        touched[model.changeset_id] = blocks
        if cut:
            rp_set[model.rp_id] = model.changeset_id
    return events, rp_set, touched


@settings(max_examples=60)
@given(steps=history, data=st.data())
def test_revert_to_any_retained_point(steps: list, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = StreamModel("vol", BLOCKS * BS, block_size=BS, extent_bytes=3 * BS)
        h = Harness(Path(tmp), model)
        try:
            events, rp_set, touched = _play(model, steps)
            h.feed(events)
            assert h.image() == bytes(model.image)
            if not rp_set:
                return
            for rp, image in model.points.items():
                assert h.mirror.view(rp).read(0, model.size) == image, f"read at rp {rp}"
            target = data.draw(st.sampled_from(sorted(rp_set)), label="revert to")
            report = h.mirror.revert(target)
            changed = set().union(*(b for cs, b in touched.items() if cs > rp_set[target]))
            assert report.blocks == len(changed)  # only the changed blocks, each once
            assert h.image() == model.points[target]
            assert h.mirror.progress.rp_id == target
            assert h.mirror.progress.retained() == [rp for rp in sorted(rp_set) if rp <= target]
            assert list(h.mirror.undo.entries_from(target)) == []
            # resuming forward re-applies the later sets and re-creates their undo data
            later = [e for e in events if e[1]["changeset_id"] > rp_set[target]]
            h.feed(later)
            assert h.image() == bytes(model.image)
            for rp, image in model.points.items():
                if rp >= target:
                    assert h.mirror.view(rp).read(0, model.size) == image
        finally:
            h.close()


@settings(max_examples=30)
@given(steps=history, keep=st.integers(1, 4))
def test_retention_keeps_the_newest_points_readable(steps: list, keep: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = StreamModel("vol", BLOCKS * BS, block_size=BS, extent_bytes=3 * BS)
        h = Harness(Path(tmp), model)
        try:
            events, rp_set, _ = _play(model, steps)
            h.feed(events)
            expired = h.mirror.expire(Retention(count=keep), now_ms=0)
            retained = sorted(rp_set)[-keep:]
            assert expired == sorted(rp_set)[:-keep] if len(rp_set) > keep else expired == []
            assert h.mirror.progress.retained() == retained
            if retained:
                assert all(base >= retained[0] for base, _ in h.mirror.undo.entries_from(0))
            for rp in retained:
                assert h.mirror.view(rp).read(0, model.size) == model.points[rp]
        finally:
            h.close()
