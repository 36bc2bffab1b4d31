"""Which recovery points a mirror keeps: the newest N, or those younger than a duration."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..exceptions import RetentionError
from .progress import PointRecord

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


@dataclass(frozen=True)
class Retention:
    count: int | None = None
    seconds: int | None = None

    def expired(self, points: list[PointRecord], now_ms: int) -> list[int]:
        """rp_ids to forget, oldest first. The newest point is always kept."""
        ordered = sorted(points, key=lambda p: p.rp_id)
        keep_from = 0
        if self.count is not None:
            keep_from = max(keep_from, len(ordered) - self.count)
        if self.seconds is not None:
            cutoff = now_ms - self.seconds * 1000
            while keep_from < len(ordered) and ordered[keep_from].sealed_at < cutoff:
                keep_from += 1
        keep_from = min(keep_from, len(ordered) - 1) if ordered else 0
        return [p.rp_id for p in ordered[:keep_from]]


KEEP_ALL = Retention()


def parse_retain(text: str | None) -> Retention:
    """`12` keeps the newest 12 points; `24h`, `90m`, `7d` keep points younger than that."""
    if text is None or text == "":
        return KEEP_ALL
    text = text.strip().lower()
    if text.isdigit():
        if int(text) < 1:
            raise RetentionError("--retain must keep at least 1 recovery point")
        return Retention(count=int(text))
    match = _DURATION.match(text)
    if not match:
        raise RetentionError(
            f"--retain {text!r} is neither a number of recovery points (e.g. 24) nor a duration (e.g. 90m, 24h, 7d)"
        )
    return Retention(seconds=int(match.group(1)) * _UNITS[match.group(2)])
