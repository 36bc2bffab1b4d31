"""The drain's pace without Kafka: full speed for a quiet or slow client, `min_bytes_per_s` (never
more, and never stalled) while a client writes faster, full speed again soon after it stops."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.producers.drain_pace import MAX_DELAY_S, MAX_YIELD_S, PERIOD_S, DrainPace

MIB = 1 << 20
RUN = 64 * 1024
STEP_S = 0.01
FULL_SPEED_RUNS = 10  # runs a step when nothing holds the drain


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _drain_for(pace: DrainPace, clock: Clock, seconds: float, client_bytes_per_step: int) -> int:
    """Step the clock; each step the client writes, then the drain ships runs while allowed
    (at most 100 runs a step: the full speed of this model). Returns the bytes drained."""
    drained = 0
    for _ in range(round(seconds / STEP_S)):
        clock.now += STEP_S
        if client_bytes_per_step:
            pace.client_wrote(client_bytes_per_step)
        for _ in range(FULL_SPEED_RUNS):
            if not pace.allows():
                break
            pace.spent(RUN)
            drained += RUN
    return drained


def test_a_quiet_or_slow_client_leaves_the_drain_at_full_speed() -> None:
    clock = Clock()
    pace = DrainPace(8 * MIB, clock)
    assert _drain_for(pace, clock, 2.0, 0) == 200 * FULL_SPEED_RUNS * RUN
    slow = 8 * MIB * STEP_S * 0.9  # 90 % of the pace: not busy
    assert _drain_for(pace, clock, 2.0, int(slow)) == 200 * FULL_SPEED_RUNS * RUN
    assert not pace.busy()


def test_a_busy_client_gets_the_disk_and_the_drain_keeps_its_minimum_rate() -> None:
    clock = Clock()
    pace = DrainPace(8 * MIB, clock)
    fast = 400 * MIB * STEP_S  # 400 MiB/s of writes marked dirty
    _drain_for(pace, clock, 1.0, int(fast))  # the first period, before the client counts as busy
    assert pace.busy()
    drained = _drain_for(pace, clock, 10.0, int(fast))
    assert 8 * MIB * 10 - RUN <= drained <= 8 * MIB * 10 + pace.depth + RUN
    assert pace.delay() <= MAX_DELAY_S


def test_the_drain_is_back_at_full_speed_within_two_periods_after_the_client_stops() -> None:
    clock = Clock()
    pace = DrainPace(8 * MIB, clock)
    _drain_for(pace, clock, 2.0, int(400 * MIB * STEP_S))
    assert pace.busy()
    clock.now += 2 * PERIOD_S
    assert not pace.busy()
    assert pace.delay() == 0.0
    assert _drain_for(pace, clock, 0.1, 0) == 10 * FULL_SPEED_RUNS * RUN


def test_after_max_yield_of_one_busy_spell_the_drain_catches_up_and_a_new_spell_yields_again() -> None:
    """A client faster than the pace but slower than the pipeline would otherwise keep the tracker
    ahead for as long as it writes."""
    clock = Clock()
    pace = DrainPace(8 * MIB, clock, max_yield_s=5.0)
    steady = int(20 * MIB * STEP_S)
    _drain_for(pace, clock, 0.5, steady)  # until the client counts as busy
    assert pace.busy()
    assert _drain_for(pace, clock, 4.0, steady) <= 8 * MIB * 4.0 + pace.depth + RUN
    _drain_for(pace, clock, 1.0, steady)  # the spell passes max_yield_s
    assert _drain_for(pace, clock, 1.0, steady) == 100 * FULL_SPEED_RUNS * RUN, "full speed after max_yield_s"
    clock.now += 3 * PERIOD_S  # the tracker publishes every write again: the drain does not look
    _drain_for(pace, clock, 0.5, steady)  # ahead again, until the client counts as busy
    assert _drain_for(pace, clock, 1.0, steady) <= 8 * MIB * 1.0 + pace.depth + RUN, "a new spell yields"
    assert MAX_YIELD_S >= 10, "the default must outlast a burst such as figure 8's 10 s job"


def test_delay_says_how_long_until_the_bucket_has_room_again() -> None:
    clock = Clock()
    pace = DrainPace(1 * MIB, clock)
    pace.client_wrote(10 * MIB)
    assert pace.busy()
    while pace.allows():
        pace.spent(RUN)
    wait = pace.delay()
    assert 0 < wait <= MAX_DELAY_S
    clock.now += RUN / MIB + 2e-3  # the bucket refills at 1 MiB/s; it went at most one run below zero
    assert pace.allows()


def test_a_pace_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        DrainPace(0)


@settings(max_examples=60, deadline=None)
@given(
    rate_mib=st.integers(1, 64),
    schedule=st.lists(st.tuples(st.floats(0.01, 1.5), st.integers(0, 1000)), min_size=1, max_size=6),
)
def test_while_busy_the_drain_never_passes_its_rate_and_never_stops(
    rate_mib: int, schedule: list[tuple[float, int]]
) -> None:
    """Over any schedule of client rates (MiB/s): what is drained while busy stays within the rate
    times the busy time plus, per busy spell, the bucket and one run (a spell starts with a full
    bucket); and the drain is never held longer than one run takes at the rate."""
    clock = Clock()
    pace = DrainPace(rate_mib * MIB, clock)
    busy_time = 0.0
    busy_drained = 0
    spells = 0
    was_busy = False
    steps_without_drain = 0
    for seconds, client_mib_s in schedule:
        for _ in range(max(1, round(seconds / STEP_S))):
            clock.now += STEP_S
            pace.client_wrote(int(client_mib_s * MIB * STEP_S))
            busy = pace.busy()
            spells += busy and not was_busy
            was_busy = busy
            drained = 0
            for _ in range(FULL_SPEED_RUNS):
                if not pace.allows():
                    break
                pace.spent(RUN)
                drained += RUN
            if busy:
                busy_time += STEP_S
                busy_drained += drained
            steps_without_drain = 0 if drained else steps_without_drain + 1
            assert steps_without_drain * STEP_S <= RUN / (rate_mib * MIB) + STEP_S + 1e-9
    assert busy_drained <= rate_mib * MIB * busy_time + spells * (pace.depth + RUN)
