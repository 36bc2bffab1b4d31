"""The activity log keeps at most `max_idle_regions` idle regions durable (regression: trimming
them raised TypeError once more regions than that had been written, failing NBD writes)."""

from __future__ import annotations

from pathlib import Path

from tidemark.producers.activity_log import ActivityLog

REGION = 1 << 20


def test_idle_regions_beyond_the_limit_are_trimmed(tmp_path: Path) -> None:
    log = ActivityLog(tmp_path / "activity.log", REGION, max_idle_regions=2, idle_seconds=0.0)
    for region in range(6):
        log.enter(region * REGION, REGION)
        log.submitted(region * REGION, REGION)
        log.settled(region * REGION, REGION)
    remaining = log.recovered_regions()
    assert 5 in remaining
    assert len(remaining) <= 3
    log.close()
