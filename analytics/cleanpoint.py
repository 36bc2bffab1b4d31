"""The suggested clean point of an encryption episode: the last recovery point before the change.

A point with seq S holds every write up to S. Writes up to `last_normal_seq` were sampled normal
(or not sampled); the first sampled encrypted write is `change_seq`. The suggestion is the newest
point with seq <= last_normal_seq; when the run has no normal sample before it (the volume's
first samples were already encrypted) it is the newest point with seq < change_seq.

Points reach the analytics app on their own topic, possibly after the writes that follow them.
The answer is settled once a point with seq >= change_seq has been seen (any point after it has
a larger seq), or once the grace period ran out in message time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def clean_point(
    points: Iterable[dict[str, Any]], change_seq: int | None, last_normal_seq: int | None
) -> dict[str, Any] | None:
    """The newest point that holds no write after the last normal one, or None."""
    if last_normal_seq is not None:
        candidates = [p for p in points if p["seq"] <= last_normal_seq]
    elif change_seq is not None:
        candidates = [p for p in points if p["seq"] < change_seq]
    else:
        return None
    return max(candidates, key=lambda p: p["rp_id"], default=None)


def settled(points: Iterable[dict[str, Any]], change_seq: int | None) -> bool:
    """Whether no point that arrives later can be a better suggestion."""
    return change_seq is not None and any(p["seq"] >= change_seq for p in points)
