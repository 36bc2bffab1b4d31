"""Applying a change-set stream to a mirror: order, idempotence, re-emission, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidemark.sinks.exceptions import InvalidChangeSetError, MirrorSizeError, MirrorStateError
from tidemark.sinks.storage.progress import ERROR

from .conftest import MakeHarness
from .stream_model import StreamModel

BS = 512


def _model(compression: str = "NONE") -> StreamModel:
    return StreamModel("vol1", 64 * BS, block_size=BS, extent_bytes=4 * BS, compression=compression)


@pytest.mark.parametrize("compression", ["NONE", "LZ4", "ZSTD"])
def test_applies_writes_and_zeros(make_harness: MakeHarness, tmp_path: Path, compression: str) -> None:
    model = _model(compression)
    h = make_harness(model)
    model.write(0, b"a" * 10 * BS)
    model.write(20 * BS, b"b" * BS)
    events = model.seal()
    model.zero(2 * BS, 3 * BS)
    events += model.seal(cut=True)
    applied = h.feed(events)
    assert [a.changeset_id for a in applied] == [1, 2]
    assert h.image() == bytes(model.image)
    assert h.mirror.progress.rp_id == 1
    point = h.mirror.progress.point(1)
    assert point is not None and point.next_offset == len(events)


def test_duplicates_and_partial_reemission_are_harmless(make_harness: MakeHarness, tmp_path: Path) -> None:
    model = _model()
    h = make_harness(model)
    model.write(0, b"x" * 8 * BS)
    first = model.seal(cut=True)
    model.write(4 * BS, b"y" * 8 * BS)
    second = model.seal()
    partial = second[:1]  # a processor crash after the first extent
    stream = first + partial + second + first + second + second[:1]
    applied = h.feed(stream)
    assert [a.changeset_id for a in applied] == [1, 2]
    assert h.image() == bytes(model.image)
    # the undo of RP 1 still holds the content before change set 2
    assert h.mirror.view(1).read(0, model.size) == model.points[1]


def test_digest_mismatch_stops_at_last_good_set_until_a_whole_copy(make_harness: MakeHarness, tmp_path: Path) -> None:
    model = _model()
    h = make_harness(model)
    model.write(0, b"1" * BS)
    good = model.seal(cut=True)
    model.write(BS, b"2" * 2 * BS)
    second = model.seal()
    model.write(3 * BS, b"3" * BS)
    third = model.seal()
    h.feed(good)
    bad_seal = (second[-1][0], dict(second[-1][1], digest=b"\0" * 8))
    with pytest.raises(InvalidChangeSetError, match="digest"):
        h.feed(second[:-1] + [bad_seal])
    assert h.mirror.progress.state == ERROR
    assert h.feed(third) == []  # waits for change set 2
    assert h.mirror.progress.changeset_id == 1
    applied = h.feed(second + third)  # the processor re-emits
    assert [a.changeset_id for a in applied] == [2, 3]
    assert h.image() == bytes(model.image)


def test_gap_is_reported(make_harness: MakeHarness, tmp_path: Path) -> None:
    model = _model()
    h = make_harness(model)
    model.write(0, b"1" * BS)
    model.seal()
    model.write(0, b"2" * BS)
    with pytest.raises(InvalidChangeSetError, match="missing"):
        h.feed(model.seal())


@pytest.mark.parametrize(
    "change, match",
    [
        ({"offset": 64 * 512}, "past the end"),
        ({"offset": 100}, "not aligned"),
        ({"checksum": b"\1" * 8}, "checksum"),
        ({"volume": "other"}, "keyed"),
    ],
)
def test_bad_extents_are_rejected(make_harness: MakeHarness, tmp_path: Path, change: dict, match: str) -> None:
    model = _model()
    h = make_harness(model)
    model.write(0, b"z" * BS)
    events = model.seal()
    extent = (events[0][0], dict(events[0][1], **change))
    with pytest.raises(InvalidChangeSetError, match=match):
        h.feed([extent])
    with pytest.raises(InvalidChangeSetError):
        h.feed(events[1:])
    assert h.image() == bytes(model.size)


def test_empty_set_carries_a_recovery_point(make_harness: MakeHarness, tmp_path: Path) -> None:
    model = _model()
    h = make_harness(model)
    model.write(0, b"q" * BS)
    events = model.seal() + model.seal(cut=True)
    h.feed(events)
    assert h.mirror.progress.rp_id == 1
    point = h.mirror.progress.point(1)
    assert point is not None and point.changeset_id == 2


def test_crash_between_mirror_write_and_progress_is_repaired(make_harness: MakeHarness, tmp_path: Path) -> None:
    model = _model()
    h = make_harness(model)
    model.write(0, b"a" * 16 * BS)
    h.feed(model.seal(cut=True))
    saved = h.layout.progress.read_bytes()
    model.write(8 * BS, b"b" * 16 * BS)
    second = model.seal(cut=True)
    h.feed(second)
    h.close()
    h.layout.progress.write_bytes(saved)  # as if killed after the fsync, before the progress
    h.open()
    assert h.mirror.progress.changeset_id == 1
    assert [a.changeset_id for a in h.feed(second)] == [2]
    assert h.image() == bytes(model.image)
    assert h.mirror.view(1).read(0, model.size) == model.points[1]


def test_mirror_must_match_its_state(make_harness: MakeHarness, tmp_path: Path) -> None:
    model = _model()
    h = make_harness(model)
    h.close()
    other = tmp_path / "other.img"
    other.write_bytes(bytes(model.size))
    from tidemark.sinks.mirror import Mirror

    with pytest.raises(MirrorStateError, match="not"):
        Mirror.create_or_open(h.layout, other, model.size, BS)
    h.path.write_bytes(bytes(BS))
    with pytest.raises(MirrorSizeError):
        Mirror.create_or_open(h.layout, h.path, model.size, BS)


def test_a_missing_mirror_is_not_silently_recreated(make_harness: MakeHarness) -> None:
    model = _model()
    h = make_harness(model)
    model.write(0, b"a" * BS)
    h.feed(model.seal(cut=True))
    h.close()
    h.path.unlink()
    from tidemark.sinks.mirror import Mirror

    with pytest.raises(MirrorStateError, match="missing"):
        Mirror.create_or_open(h.layout, h.path, model.size, BS)
