"""Retention passed the processor: resync requests for the volumes it knew, never a silent skip."""

from __future__ import annotations

from pathlib import Path

from tidemark.core.volumes import VolumeSpec
from tidemark.processors.fold_volume import FoldOptions
from tidemark.schemas.codec import default_codec

from .test_handler import BLOCK, TOPICS, ListJournal, Run, _journal

NAMES = ("a", "b")
VOLUMES = {n: VolumeSpec(n, 256 * BLOCK) for n in NAMES}
OPTIONS = FoldOptions(subinterval=0.5, rp_interval=2.0, metrics_interval=3600, subinterval_max_bytes=40 * BLOCK)


def _resyncs(run: Run) -> list[dict[str, object]]:
    events = (default_codec().decode(v) for v in run.events(TOPICS.changesets))
    return [r for t, r in events if t == "ResyncRequest"]


def _stopped_at(tmp_path: Path, journal: ListJournal, crash_at: int) -> dict[bytes, bytes | None]:
    changelog: dict[bytes, bytes | None] = {}
    Run(tmp_path / "first", journal, VOLUMES, OPTIONS, cache=128 << 20).handle(0, crash_at, 50, changelog)
    return changelog


def test_a_committed_position_below_the_low_watermark_requests_a_resync_of_every_volume(tmp_path: Path) -> None:
    journal = ListJournal(_journal(NAMES, 1000, 256))
    end, crash_at = len(journal.messages), 500
    changelog = _stopped_at(tmp_path, journal, crash_at)
    low = crash_at + 200  # retention deleted 200 messages the processor never folded
    restarted = Run(tmp_path / "second", journal, VOLUMES, OPTIONS, cache=0, changelog=changelog)
    assert restarted.handler.refold_start(0) is not None, "an open sub-interval, now unreadable"
    assert restarted.handler.journal_trimmed(0, crash_at, low) == list(NAMES)
    assert restarted.handler.refold_start(0) is None
    restarted.handle(low, end, 50, changelog)

    resyncs = _resyncs(restarted)
    assert [r["volume"] for r in resyncs] == list(NAMES), "one per volume, no gap resync after it"
    assert all(f"offsets {crash_at}..{low - 1}" in str(r["reason"]) for r in resyncs)
    assert all("retention deleted" in str(r["reason"]) and r["seen_seq"] == -1 for r in resyncs)
    seals = [default_codec().decode(v)[1] for v in restarted.events(TOPICS.changesets)]
    assert any(s.get("extent_count") for s in seals), "the partition flows on"


def test_an_open_subinterval_starting_below_the_low_watermark_is_dropped_with_a_resync(tmp_path: Path) -> None:
    journal = ListJournal(_journal(NAMES, 1000, 256))
    end, crash_at = len(journal.messages), 500
    changelog = _stopped_at(tmp_path, journal, crash_at)
    restarted = Run(tmp_path / "second", journal, VOLUMES, OPTIONS, cache=0, changelog=changelog)
    start = restarted.handler.refold_start(0)
    assert start is not None
    lost = restarted.handler.journal_trimmed(0, crash_at, start + 1)
    assert lost and len(lost) <= len(NAMES)
    restarted.handle(crash_at, end, 50, changelog)
    resyncs = _resyncs(restarted)
    assert [r["volume"] for r in resyncs] == lost
    assert all("inside the open sub-interval" in str(r["reason"]) for r in resyncs)


def test_nothing_is_requested_when_retention_kept_everything(tmp_path: Path) -> None:
    journal = ListJournal(_journal(NAMES, 600, 256))
    changelog = _stopped_at(tmp_path, journal, 300)
    restarted = Run(tmp_path / "second", journal, VOLUMES, OPTIONS, cache=0, changelog=changelog)
    assert restarted.handler.journal_trimmed(0, 300, 0) == []
