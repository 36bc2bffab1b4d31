"""The tracker's read profile: the first blocks read after a connect, bounded, published once."""

from __future__ import annotations

import time

from pyroaring import BitMap

from tidemark.producers.read_profile import ReadProfile

BS = 4096


class Published:
    def __init__(self) -> None:
        self.profiles: list[BitMap] = []

    def __call__(self, blocks: BitMap, connected_at: float) -> None:
        assert abs(connected_at - time.time()) < 60
        self.profiles.append(BitMap(blocks))


def test_reads_before_a_connect_are_not_recorded_and_the_bound_finishes_the_profile() -> None:
    published = Published()
    profile = ReadProfile(BS, published, max_blocks=10)
    profile.record(0, 100 * BS)
    profile.connected()
    profile.record(50 * BS + 1, 3 * BS)  # blocks 50..53
    profile.record(7 * BS, BS)
    assert published.profiles == []
    profile.record(100 * BS, 20 * BS)  # only 5 blocks fit
    assert published.profiles == [BitMap([7, 50, 51, 52, 53, 100, 101, 102, 103, 104])]
    profile.record(300 * BS, BS)
    profile.close()
    assert len(published.profiles) == 1, "a finished profile is published once, nothing after it"


def test_a_new_connect_starts_over_and_close_publishes_the_profile_in_progress() -> None:
    published = Published()
    profile = ReadProfile(BS, published, max_blocks=100)
    profile.connected()
    profile.record(0, BS)
    profile.connected()
    profile.record(9 * BS, BS)
    profile.close()
    assert published.profiles == [BitMap([9])]
    empty = ReadProfile(BS, published)
    empty.connected()
    empty.close()
    assert len(published.profiles) == 1, "an empty profile is not published"


def test_the_window_after_the_connect_finishes_the_profile() -> None:
    published = Published()
    profile = ReadProfile(BS, published, max_blocks=100, window=0.05)
    profile.connected()
    profile.record(0, BS)
    time.sleep(0.1)
    profile.record(5 * BS, BS)
    assert published.profiles == [BitMap([0, 5])]


def test_a_failing_publish_does_not_fail_the_read() -> None:
    def broken(blocks: BitMap, connected_at: float) -> None:
        raise BufferError("queue full")

    profile = ReadProfile(BS, broken, max_blocks=1)
    profile.connected()
    profile.record(0, BS)  # logged, not raised
