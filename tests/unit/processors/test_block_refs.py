"""BlockRefs (runs of blocks per journal offset) against a dict of block -> ref."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tidemark.processors.block_refs import BlockRefs

assignments = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40)), max_size=80)


@given(assignments)
def test_runs_equal_a_per_block_model(writes: list[tuple[int, int]]) -> None:
    refs = BlockRefs()
    model: dict[int, int] = {}
    for ref, (first, count) in enumerate(writes):
        refs.assign(first, count, ref)
        model.update(dict.fromkeys(range(first, first + count), ref))
    runs = list(refs.runs())
    got = {run.first + i: run.ref for run in runs for i in range(run.count)}
    assert got == model
    assert refs.block_count == len(model) and list(refs.bitmap()) == sorted(model)
    assert all(a.first + a.count <= b.first for a, b in itertools.pairwise(runs)), "disjoint, ascending"
    assert refs.refs() == sorted(set(model.values()))
    by_ref = refs.runs_by_ref()
    assert by_ref == sorted(runs, key=lambda run: (run.ref, run.first))
    assert len(refs) <= 2 * len(writes) + 1, "size follows the writes, not the blocks"


def test_a_huge_range_is_one_run() -> None:
    refs = BlockRefs()
    refs.assign(0, 8 << 20, 0)
    refs.assign(100, 1, 1)
    assert len(refs) == 3 and refs.block_count == 8 << 20
