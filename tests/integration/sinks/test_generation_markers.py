"""Operators' markers carry the volume's current primary generation (a failover bumped it)."""

from __future__ import annotations

import pytest

from tidemark.core.volumes import VolumeSpec, bump_generation, publish_volume
from tidemark.sinks.ops.markers import request_group_barrier, request_recovery_point
from tidemark.sinks.reading.topic_reader import read_records

pytestmark = pytest.mark.integration


def test_recovery_point_requests_and_barriers_carry_the_generation(tm) -> None:  # noqa: ANN001
    publish_volume(tm.clients, tm.topics, VolumeSpec("vol-g", 1 << 20, group="grp-g"))
    bump_generation(tm.clients, tm.topics, "vol-g", primary_site="east")
    bump_generation(tm.clients, tm.topics, "vol-g", primary_site="west")
    marker_id = request_recovery_point(tm.clients, tm.topics, "vol-g", "after failover")
    _, members = request_group_barrier(tm.clients, tm.topics, "grp-g", "barrier")
    assert members == ["vol-g"]
    markers = {r["marker_id"]: r for r in read_records(tm.clients, tm.topics.writes, "Marker")}
    assert markers[marker_id]["generation"] == 2 and markers[marker_id]["kind"] == "REQUESTED"
    barriers = [r for r in markers.values() if r["kind"] == "BARRIER"]
    assert [r["generation"] for r in barriers] == [2]
