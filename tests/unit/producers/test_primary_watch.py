"""The fencing rules of a tracker (one primary at a time), without Kafka."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidemark.producers.primary_watch import Primary, fence_reason, start_refusal

sites = st.one_of(st.none(), st.sampled_from(["dc1", "dr1", "dr2"]))
primaries = st.builds(Primary, st.integers(min_value=0, max_value=5), sites)


def test_a_newer_generation_fences_and_says_what_to_do() -> None:
    reason = fence_reason("vm1", Primary(0, None), Primary(1, "dr1"))
    assert reason is not None
    assert "vm1" in reason and "generation 1" in reason and "'dr1'" in reason and "Stop this tracker" in reason


def test_another_named_site_fences_even_at_the_same_generation() -> None:
    reason = fence_reason("vm1", Primary(2, "dc1"), Primary(2, "dr1"))
    assert reason is not None and "'dr1'" in reason and "'dc1'" in reason


def test_the_own_record_again_changes_nothing() -> None:
    assert fence_reason("vm1", Primary(3, "dc1"), Primary(3, "dc1")) is None
    assert fence_reason("vm1", Primary(3, None), Primary(3, None)) is None
    assert fence_reason("vm1", Primary(3, "dc1"), Primary(2, None)) is None


@given(primaries, primaries)
def test_fenced_exactly_when_newer_or_another_named_site(own: Primary, seen: Primary) -> None:
    expected = seen.generation > own.generation or (seen.site is not None and seen.site != own.site)
    assert (fence_reason("v", own, seen) is not None) == expected


def test_a_tracker_for_another_site_than_the_primary_is_refused_naming_the_primary() -> None:
    refusal = start_refusal("vm1", "dc1", Primary(4, "dr1"))
    assert refusal is not None and "'dr1'" in refusal and "'dc1'" in refusal
    assert start_refusal("vm1", "dr1", Primary(4, "dr1")) is None
    assert start_refusal("vm1", None, Primary(4, "dr1")) is None, "no --site: the registry's primary"
    assert start_refusal("vm1", "dc1", Primary(0, None)) is None, "an unnamed original primary"


@given(primaries, sites)
def test_a_tracker_allowed_to_start_is_not_fenced_by_the_record_it_started_from(
    current: Primary, site: str | None
) -> None:
    if start_refusal("v", site, current) is None:
        assert fence_reason("v", Primary(current.generation, site or current.site), current) is None
