"""The batch sizer keeps a transaction's block data near its byte bound, whatever the write size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidemark.processors.batch_sizer import BatchSizer


def test_the_count_follows_the_message_size() -> None:
    sizer = BatchSizer(max_count=500, batch_bytes=16 << 20)
    assert sizer.count() == 1, "nothing known yet: one message"
    sizer.took([256 << 10] * 3)
    assert sizer.count() == 64
    sizer.took([4 << 10])
    assert sizer.count() == 64 * 10 // 9, "a smaller message only lowers the estimate slowly"
    for _ in range(60):
        sizer.took([4 << 10])
    assert sizer.count() == 500, "capped by max_count"
    sizer.took([4 << 20])
    assert sizer.count() == 4, "a larger message counts at once"


def test_messages_without_data_teach_nothing() -> None:
    sizer = BatchSizer(max_count=500, batch_bytes=16 << 20)
    sizer.took([1 << 20])
    sizer.took([0, 0, 0])
    sizer.took([])
    assert sizer.count() == 16


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        BatchSizer(0, 1)


@given(st.lists(st.lists(st.integers(0, 8 << 20), max_size=50), max_size=30), st.integers(1, 1000))
def test_the_count_stays_within_one_and_max_count(batches: list[list[int]], max_count: int) -> None:
    sizer = BatchSizer(max_count=max_count, batch_bytes=16 << 20)
    for sizes in batches:
        sizer.took(sizes)
        assert 1 <= sizer.count() <= max_count
        if sizes and max(sizes) > 0:
            assert sizer.count() * max(sizes) <= max(16 << 20, max(sizes)), "the largest recent message fits the bound"
