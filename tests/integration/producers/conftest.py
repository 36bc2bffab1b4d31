"""Fixtures of the tracker integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .nbd_harness import TrackerProcess


@pytest.fixture
def trackers() -> Iterator[list[TrackerProcess]]:
    """Tracker processes a test started; any still running at teardown are killed (by their pid)."""
    started: list[TrackerProcess] = []
    yield started
    for tracker in started:
        tracker.kill()
