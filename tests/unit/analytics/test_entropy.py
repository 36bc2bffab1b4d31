from __future__ import annotations

import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidemark.analytics.entropy import sample_block, sampled, shannon_entropy, stride_for
from tidemark.analytics.exceptions import PayloadError

from .generated import BS, encrypted, text


def test_entropy_orders_zero_text_and_ciphertext() -> None:
    rng = random.Random(1)
    assert shannon_entropy(bytes(BS)) == 0.0
    assert 3.5 < shannon_entropy(text(BS, rng)) < 5.0
    assert shannon_entropy(encrypted(text(BS, rng))) > 7.9
    assert shannon_entropy(os.urandom(BS)) > 7.9
    assert shannon_entropy(b"") == 0.0


@given(st.binary(min_size=1, max_size=2048))
def test_entropy_is_within_bounds(data: bytes) -> None:
    assert 0.0 <= shannon_entropy(data) <= 8.0 + 1e-9


def test_two_symbols_evenly_is_one_bit() -> None:
    assert shannon_entropy(b"ab" * 512) == pytest.approx(1.0)


def test_sampling_is_deterministic_and_about_one_in_stride() -> None:
    picks = [seq for seq in range(40_000) if sampled("vol", seq, 10)]
    assert picks == [seq for seq in range(40_000) if sampled("vol", seq, 10)]
    assert 3_500 < len(picks) < 4_500
    assert all(sampled("vol", seq, 1) for seq in range(100))


def test_stride_keeps_a_window_like_the_last_within_budget() -> None:
    assert stride_for(0, 64) == 1
    assert stride_for(64, 64) == 1
    assert stride_for(65, 64) == 2
    assert stride_for(64_000, 64) == 1000


def test_sample_block_takes_whole_blocks_only() -> None:
    data = bytes(range(256)) * (3 * BS // 256)
    assert len(sample_block(data, BS, 4)) == BS
    assert bytes(sample_block(data, BS, 4)) == data[BS : 2 * BS]
    with pytest.raises(PayloadError, match="seq 7"):
        sample_block(b"x" * 100, BS, 7)
