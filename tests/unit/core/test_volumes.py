"""Registry records: generation and primary site round-trip; a failover's next generation and marker."""

from __future__ import annotations

import pytest

from tidemark.core.exceptions import InvalidNameError, VolumeSpecError
from tidemark.core.volumes import VolumeSpec
from tidemark.schemas.codec import default_codec


def test_generation_and_primary_site_round_trip_through_the_registry_record() -> None:
    spec = VolumeSpec("vm1", 1 << 20, group="g", generation=3, primary_site="site-b")
    _, record = default_codec().decode(default_codec().encode("Volume", spec.to_record()))
    assert VolumeSpec.from_record(record) == spec


def test_a_record_written_before_generations_reads_as_generation_0() -> None:
    record: dict[str, object] = dict(VolumeSpec("vm1", 1 << 20).to_record())
    del record["generation"], record["primary_site"]
    assert VolumeSpec.from_record(record).generation == 0


def test_the_next_generation_is_one_higher_at_the_new_site_and_its_marker_carries_it() -> None:
    promoted = VolumeSpec("vm1", 1 << 20, generation=4).next_generation("dr")
    assert (promoted.generation, promoted.primary_site) == (5, "dr")
    marker = promoted.generation_marker(123)
    _, decoded = default_codec().decode(default_codec().encode("Marker", marker))
    assert decoded["kind"] == "EPOCH_START" and decoded["generation"] == 5 and decoded["epoch"] is None
    assert decoded["volume"] == "vm1" and decoded["timestamp"] == 123


def test_a_negative_generation_or_a_bad_site_name_is_refused() -> None:
    with pytest.raises(VolumeSpecError, match="generation -1"):
        VolumeSpec("vm1", 1 << 20, generation=-1)
    with pytest.raises(InvalidNameError):
        VolumeSpec("vm1", 1 << 20, primary_site="bad site\n")
