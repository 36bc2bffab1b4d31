from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidemark.analytics.windows import REGION_BYTES, OpenWindow, size_bucket, window_start

BS = 4096


def test_size_buckets_are_powers_of_two() -> None:
    assert [size_bucket(n) for n in (1, 4096, 4097, 65536, 65537)] == [1, 4096, 8192, 65536, 131072]


def test_window_start_is_aligned() -> None:
    assert window_start(12_345, 5_000) == 10_000
    assert window_start(10_000, 5_000) == 10_000


def test_counts_rates_histogram_and_hot_regions() -> None:
    window = OpenWindow(10_000, 5_000)
    window.add_write(1, 0, 65536, BS)
    window.add_write(2, 0, 4096, BS)  # rewrites block 0
    window.add_write(3, 3 * REGION_BYTES, 4096, BS)
    window.add_write(4, 3 * REGION_BYTES + 8192, 4096, BS)
    window.add_write(5, 3 * REGION_BYTES + 16384, 4096, BS)
    summary = window.summary(hot_regions=1, volume_size=4 * REGION_BYTES, buckets=4)
    assert summary["writes"] == 5 and summary["bytes"] == 65536 + 4 * 4096
    assert summary["iops"] == 5 / 5
    assert summary["sizes"] == {"4096": 4, "65536": 1}
    assert summary["overwrite_ratio"] == 1 - 19 / 20
    assert summary["hot_regions"] == [[3 * REGION_BYTES, 3]]
    assert summary["heat"] == [2, 0, 0, 3]
    assert (summary["first_seq"], summary["last_seq"]) == (1, 5)


def test_a_write_across_regions_counts_in_each() -> None:
    window = OpenWindow(0, 1000)
    window.add_write(1, REGION_BYTES - BS, 2 * BS, BS)
    assert dict(window.regions) == {0: 1, 1: 1}


def test_samples_remember_where_the_high_entropy_starts() -> None:
    window = OpenWindow(0, 1000)
    for seq, bits in [(1, 3.0), (2, 4.0), (3, 7.9), (4, 2.0), (5, 7.95)]:
        window.add_sample(seq, bits, 7.5)
    summary = window.summary(10, 0, 8)
    assert (summary["first_high_seq"], summary["last_low_seq"], summary["latest_low_seq"]) == (3, 2, 4)
    assert summary["high_fraction"] == 2 / 5


@given(st.lists(st.tuples(st.integers(0, 255), st.integers(1, 16)), min_size=1, max_size=60))
def test_overwrite_ratio_counts_repeated_blocks(writes: list[tuple[int, int]]) -> None:
    window = OpenWindow(0, 1000)
    touched: list[int] = []
    for seq, (block, count) in enumerate(writes):
        window.add_write(seq, block * BS, count * BS, BS)
        touched += range(block, block + count)
    summary = window.summary(5, 0, 16)
    assert summary["overwrite_ratio"] == 1 - len(set(touched)) / len(touched)
    assert sum(summary["heat"]) == sum(window.regions.values())
