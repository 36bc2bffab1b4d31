"""Gaps stop the mirror: a ResyncRequest or missing change sets leave it RESYNC_NEEDED where it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidemark.sinks.exceptions import ChangeSetGapError, UnknownRecoveryPointError
from tidemark.sinks.ops.verify_run import VerifyRequest, run_verify
from tidemark.sinks.storage.progress import REPLICATING, RESYNC_NEEDED

from .conftest import MakeHarness
from .stream_model import Event, StreamModel

BS = 512


def _resync_request(model: StreamModel, seen_seq: int) -> Event:
    return ("ResyncRequest", {
        "volume": model.volume, "epoch": 1, "expected_seq": model.seq + 1, "seen_seq": seen_seq,
        "reason": "seq gap", "bitmap": None, "timestamp": 0,
    })  # fmt: skip


@pytest.mark.parametrize("seen_seq, says", [(9, "expected seq 2, saw 9"), (-1, "whole volume is in doubt")])
def test_a_resync_request_stops_the_mirror_at_the_gap(make_harness: MakeHarness, seen_seq: int, says: str) -> None:
    model = StreamModel("vol", 32 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, b"a" * 4 * BS)
    h.feed(model.seal(cut=True))
    with pytest.raises(ChangeSetGapError, match=says):
        h.feed([_resync_request(model, seen_seq)])
    model.write(2 * BS, b"b" * 4 * BS)
    with pytest.raises(ChangeSetGapError, match="not applied"):
        h.feed(model.seal(cut=True))
    assert h.mirror.progress.state == RESYNC_NEEDED
    assert h.mirror.progress.changeset_id == 1
    assert h.image() == model.points[1]
    h.close()
    h.open()  # the stop is durable
    assert h.mirror.progress.state == RESYNC_NEEDED
    with pytest.raises(UnknownRecoveryPointError, match="recovery point 2 .* lies past the gap"):
        h.mirror.point(2)
    assert h.mirror.view(1).read(0, model.size) == model.points[1]


def test_a_changeset_gap_stops_the_mirror_and_offers_no_later_point(make_harness: MakeHarness) -> None:
    model = StreamModel("vol", 32 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, b"a" * BS)
    h.feed(model.seal(cut=True))
    model.write(0, b"b" * BS)
    model.seal()  # lost
    model.write(0, b"c" * BS)
    with pytest.raises(ChangeSetGapError, match="missing"):
        h.feed(model.seal(cut=True))
    assert h.mirror.progress.state == RESYNC_NEEDED and h.mirror.progress.rp_id == 1
    with pytest.raises(UnknownRecoveryPointError, match="past the gap"):
        h.mirror.view(2)


def test_a_resync_request_before_the_resync_is_not_met_again(make_harness: MakeHarness) -> None:
    model = StreamModel("vol", 32 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, b"a" * BS)
    h.feed(model.seal(cut=True))
    state = h.mirror.progress
    state.resynced_below, state.state = h.offset + 1, REPLICATING  # as `tidemark resync` records it
    h.mirror.save()
    h.feed([_resync_request(model, 7)])
    model.write(BS, b"b" * BS)
    h.feed(model.seal(cut=True))
    assert h.mirror.progress.rp_id == 2 and h.image() == model.points[2]
    with pytest.raises(ChangeSetGapError):
        h.feed([_resync_request(model, 12)])  # a new gap, after the resync


def test_verify_reports_the_gap(make_harness: MakeHarness, tmp_path: Path) -> None:
    model = StreamModel("vol", 32 * BS, block_size=BS)
    h = make_harness(model)
    model.write(0, b"a" * BS)
    h.feed(model.seal(cut=True))
    with pytest.raises(ChangeSetGapError):
        h.feed([_resync_request(model, 5)])
    source = tmp_path / "source.img"
    source.write_bytes(model.points[1])
    report = run_verify(None, None, h.layout.root.parents[2], VerifyRequest("vol", h.path, source=source))  # type: ignore[arg-type]
    assert report.identical
    assert any(
        note.startswith("GAP: the journal of volume 'vol' has a gap after change set 1") for note in report.notes
    )
