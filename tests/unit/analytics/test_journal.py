"""The journal reader's offsets: a commit names the offset after the last handled message of each
partition, a partition with nothing new since its last commit is not committed again, and a
partition taken away by a rebalance is not committed at all."""

from __future__ import annotations

from tidemark.analytics.journal import Positions


def _offsets(positions: Positions) -> list[tuple[str, int, int]]:
    return [(tp.topic, tp.partition, tp.offset) for tp in positions.pending()]


def test_pending_names_the_offset_after_the_last_handled_message() -> None:
    positions = Positions("w")
    assert _offsets(positions) == []
    positions.handled(2, 10)
    positions.handled(0, 4)
    positions.handled(2, 11)
    assert _offsets(positions) == [("w", 0, 5), ("w", 2, 12)]


def test_committed_partitions_leave_pending_until_they_move_again() -> None:
    positions = Positions("w")
    positions.handled(0, 4)
    positions.handled(1, 7)
    positions.committed(positions.pending())
    assert _offsets(positions) == []
    positions.handled(1, 8)
    assert _offsets(positions) == [("w", 1, 9)]


def test_revoked_partitions_are_not_committed() -> None:
    positions = Positions("w")
    positions.handled(0, 4)
    positions.handled(1, 7)
    positions.forget([1])
    assert _offsets(positions) == [("w", 0, 5)]
