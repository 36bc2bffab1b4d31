"""The pull-ahead state machine without Kafka: admission under the bound, AHEAD on congestion or
a lost link, draining only while below the resume mark, the switch back once drained, and markers
parked meanwhile released in the order they were taken, never dropped."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.producers.ship_window import Mode, ShipWindow

MIB = 1 << 20


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def connected(bound: int = 10 * MIB) -> tuple[ShipWindow[str], Clock, list[int]]:
    clock = Clock()
    window: ShipWindow[str] = ShipWindow(bound, clock=clock)
    window.link_up()
    assert window.resume(lambda: True) == []
    return window, clock, []


def mode_of(window: ShipWindow[str]) -> Mode:
    """The window's mode, read afresh (mypy would keep an asserted `window.mode` narrowed past calls)."""
    return window.mode


def test_a_new_window_is_ahead_until_the_link_is_up_and_drained() -> None:
    window: ShipWindow[str] = ShipWindow(MIB)
    dirty: list[int] = []
    assert window.admit(4096, lambda: dirty.append(1)) is None
    assert dirty == [1] and mode_of(window) is Mode.AHEAD
    assert window.resume(lambda: False) is None
    window.link_up()
    assert window.resume(lambda: False) is None
    assert window.resume(lambda: True) == []
    assert mode_of(window) is Mode.SYNC


def test_writes_pass_the_bound_then_go_dirty_without_memory() -> None:
    window, _clock, dirty = connected(bound=1 * MIB)
    tickets = [window.admit(256 * 1024, lambda: dirty.append(1)) for _ in range(4)]
    assert all(t is not None for t in tickets) and window.unshipped_bytes == MIB
    assert window.admit(4096, lambda: dirty.append(2)) is None
    assert dirty == [2] and mode_of(window) is Mode.AHEAD
    assert window.unshipped_bytes == MIB, "a dirty write must not count as unshipped bytes"


def test_a_write_larger_than_the_bound_is_admitted_when_nothing_is_unshipped() -> None:
    window, _clock, dirty = connected(bound=MIB)
    assert window.admit(4 * MIB, lambda: dirty.append(1)) is not None
    assert dirty == []


def test_draining_waits_for_the_unshipped_bytes_to_fall_below_half_the_bound() -> None:
    window, _clock, dirty = connected(bound=MIB)
    ticket = window.admit(MIB, lambda: None)
    assert ticket is not None
    assert window.admit(4096, lambda: dirty.append(1)) is None
    assert not window.may_drain()
    window.shipped(MIB // 2 - 4096, [])
    assert not window.may_drain()
    window.shipped(8192, [])
    assert window.may_drain()
    assert window.resume(lambda: False) is None, "switched back before the dirty bitmap was drained"
    assert window.resume(lambda: True) == []
    assert mode_of(window) is Mode.SYNC


def test_a_lost_link_turns_ahead_and_no_drain_happens_until_it_is_back() -> None:
    window, _clock, dirty = connected()
    assert window.link_lost() is True
    assert window.link_lost() is False
    assert window.admit(4096, lambda: dirty.append(1)) is None
    assert not window.may_drain() and window.resume(lambda: True) is None
    window.link_up()
    assert window.may_drain()
    assert window.resume(lambda: True) == []


def test_markers_are_released_after_the_drain_in_the_order_they_were_taken() -> None:
    window, _clock, _dirty = connected()
    early, late = window.ticket(), window.ticket()
    window.link_lost()
    window.park(late, "requested-2")  # parked by a submitter while the shipper still held `early`
    window.park(early, "flush-1")
    window.link_up()
    assert window.resume(lambda: False) is None and window.parked() == 2
    assert window.resume(lambda: True) == ["flush-1", "requested-2"]
    assert window.parked() == 0


def test_the_rpo_at_risk_is_the_unshipped_bytes_plus_dirty_and_the_oldest_age() -> None:
    window, clock, _dirty = connected()
    first = window.admit(4096, lambda: None)
    clock.now = 2.0
    second = window.admit(8192, lambda: None)
    assert first is not None and second is not None
    clock.now = 5.0
    risk = window.at_risk(dirty_bytes=0)
    assert (risk.unshipped_bytes, risk.oldest_age) == (12288, 5.0)
    window.shipped(4096, [first])
    assert window.at_risk(0).oldest_age == 3.0
    window.shipped(8192, [second])
    assert window.at_risk(0) == window.at_risk(0) and window.at_risk(0).bytes == 0
    assert window.at_risk(0).oldest_age == 0.0
    window.link_lost()
    clock.now = 9.0
    risk = window.at_risk(dirty_bytes=4096)
    assert (risk.bytes, risk.oldest_age) == (4096, 4.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.integers(1, 64)),
            st.tuples(st.just("ship"), st.integers(0, 10)),
            st.tuples(st.just("marker"), st.none()),
            st.tuples(st.just("lost"), st.none()),
            st.tuples(st.just("up"), st.none()),
            st.tuples(st.just("drain"), st.none()),
        ),
        max_size=120,
    )
)
def test_bounded_in_order_and_nothing_dropped(steps: list[tuple[str, int | None]]) -> None:
    """Whatever happens: unshipped bytes never pass the bound (but for a lone oversized write),
    every marker comes out exactly once and in order, and SYNC is only entered drained."""
    bound = 32
    window: ShipWindow[int] = ShipWindow(bound)
    open_tickets: list[tuple[int, int]] = []
    dirty = [0]  # blocks marked and not drained (a list: the callbacks below change it)
    taken: list[int] = []
    published: list[int] = []
    for op, value in steps:
        if op == "write":
            assert value is not None

            ticket = window.admit(value, lambda: dirty.__setitem__(0, dirty[0] + 1))
            if ticket is not None:
                open_tickets.append((ticket, value))
            assert window.unshipped_bytes <= bound or len(open_tickets) == 1
        elif op == "ship" and open_tickets:
            ticket, nbytes = open_tickets.pop(0)
            window.shipped(nbytes, [ticket])
        elif op == "marker":
            ticket = window.ticket()
            taken.append(ticket)
            if window.mode is Mode.AHEAD:
                window.park(ticket, ticket)
            else:
                published.append(ticket)
        elif op == "lost":
            window.link_lost()
        elif op == "up":
            window.link_up()
        elif op == "drain" and window.may_drain():
            dirty[0] = max(0, dirty[0] - 1)
        released = window.resume(lambda: dirty[0] == 0)
        if released is not None:
            assert dirty[0] == 0
            published.extend(released)
    window.link_up()
    for ticket, nbytes in open_tickets:
        window.shipped(nbytes, [ticket])
    published.extend(window.resume(lambda: True) or [])
    assert published == taken


def test_the_stall_clock_runs_only_while_sent_events_go_unsettled() -> None:
    """What the shipper's stall watch reads: sent events with no settlement this long mean a lost link;
    writes still queued (a backlog) and dirty blocks do not count."""
    window, clock, _dirty = connected()
    assert window.stalled_for() == 0.0
    first = window.admit(4096, lambda: None)
    clock.now = 3.0
    second = window.admit(4096, lambda: None)
    assert first is not None and second is not None
    clock.now = 20.0
    assert window.stalled_for() == 0.0, "queued, not sent: a backlog, not a stall"
    window.sending(first)
    clock.now = 31.0
    assert window.stalled_for() == 11.0
    window.shipped(4096, [first])
    window.sending(second)
    clock.now = 33.0
    assert window.stalled_for() == 2.0, "the clock restarts at the send of the next"
    drained = window.track(4096)
    clock.now = 36.0
    window.shipped(4096, [second])
    clock.now = 37.0
    assert window.stalled_for() == 1.0, "a drained extent is sent when taken; a settlement restarts the clock"
    window.shipped(4096, [drained])
    window.link_lost()
    clock.now = 45.0
    assert window.at_risk(dirty_bytes=4096).oldest_age == 8.0 and window.stalled_for() == 0.0


def test_a_run_is_admitted_in_order_until_the_bound_and_the_rest_goes_dirty_at_once() -> None:
    window, _clock, _dirty = connected(bound=MIB)
    marked: list[list[int]] = []
    tickets = window.admit_all([256 * 1024] * 6, marked.append)
    assert [t is not None for t in tickets] == [True] * 4 + [False] * 2
    taken = [ticket for ticket in tickets if ticket is not None]
    assert taken == sorted(taken), "tickets follow the run's order"
    assert marked == [[4, 5]] and mode_of(window) is Mode.AHEAD
    assert window.unshipped_bytes == MIB
    assert window.admit_all([4096], marked.append) == [None], "once ahead, later writes stay dirty"
    assert marked == [[4, 5], [0]]


@given(st.lists(st.integers(1, 3 * MIB), max_size=12), st.integers(1, 4 * MIB))
def test_a_run_is_admitted_as_one_admit_after_another(sizes: list[int], bound: int) -> None:
    one, _clock, _dirty = connected(bound)
    each = [one.admit(size, lambda: None) is not None for size in sizes]
    run, _clock, _dirty = connected(bound)
    assert [ticket is not None for ticket in run.admit_all(sizes, lambda _ahead: None)] == each
    assert (run.unshipped_bytes, mode_of(run)) == (one.unshipped_bytes, mode_of(one))
