"""Parked markers survive a restart in the order they were taken, until confirmed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidemark.producers.exceptions import TrackerError
from tidemark.producers.parked_markers import ParkedMarkers


def test_markers_are_kept_in_ticket_order_until_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "markers.parked"
    parked = ParkedMarkers(path)
    assert parked.load() == []
    parked.hold(7, "REQUESTED", "before upgrade")
    parked.hold(3, "FLUSH", None)
    assert ParkedMarkers(path).load() == [("FLUSH", None), ("REQUESTED", "before upgrade")]
    parked.confirmed(3)
    parked.confirmed(99)
    assert ParkedMarkers(path).load() == [("REQUESTED", "before upgrade")]


def test_a_corrupt_file_names_itself_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "markers.parked"
    path.write_text("[[1")
    with pytest.raises(TrackerError, match="markers.parked.*move it away"):
        ParkedMarkers(path).load()
