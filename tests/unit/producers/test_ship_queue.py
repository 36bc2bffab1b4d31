"""The shipper's queue: order, and when the ship thread is woken."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from tidemark.producers.ship_queue import ShipQueue


@given(st.lists(st.tuples(st.integers(), st.booleans())))
def test_items_come_out_in_the_order_they_went_in_whatever_the_wake(items: list[tuple[int, bool]]) -> None:
    queue: ShipQueue[int] = ShipQueue()
    for item, wake in items:
        queue.put(item, wake=wake)
    assert len(queue) == len(items)
    out = []
    while (first := queue.first()) is not None:
        assert queue.take() == first
        out.append(first)
    assert out == [item for item, _wake in items]
    assert queue.empty() and queue.take() is None


def test_a_put_without_wake_leaves_the_ship_thread_asleep_and_wake_ends_its_wait() -> None:
    queue: ShipQueue[int] = ShipQueue()
    queue.put(1, wake=False)
    woken = threading.Event()

    def ship_thread() -> None:
        queue.wait(30)
        woken.set()

    thread = threading.Thread(target=ship_thread)
    thread.start()
    assert not woken.wait(0.2), "woken by a put without wake"
    queue.wake()
    thread.join(10)
    assert woken.is_set() and queue.take() == 1


def test_a_wake_before_the_wait_is_not_lost() -> None:
    queue: ShipQueue[int] = ShipQueue()
    queue.put(1)
    queue.wait(30)  # returns at once: woken since the last wait
    assert queue.take() == 1
