"""The mirror applier against a real broker, fed with change sets built by StreamModel."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tidemark.schemas import records
from tidemark.schemas.codec import default_codec
from tidemark.sinks.apply.applier import Applier, ApplierOptions, RunSummary
from tidemark.sinks.exceptions import UnknownRecoveryPointError
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.ops.revert import revert_mirror
from tidemark.sinks.ops.verify_run import VerifyRequest, run_verify
from tidemark.sinks.reading.topic_reader import read_records
from tidemark.sinks.status import latest_statuses
from tidemark.sinks.storage import progress as progress_file
from tidemark.sinks.storage.retention import Retention

from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, publish_manifest, publish_raw, register

pytestmark = pytest.mark.integration

BS = 4096


def _apply(tm, volume: str, path: Path, site: str = "default", **options) -> RunSummary:  # noqa: ANN001
    options.setdefault("exit_when_idle", 1.0)
    applier = Applier(tm.clients, tm.topics, tm.settings.state_dir, ApplierOptions(volume, path, site, **options))
    return applier.run(threading.Event())


def _history(tm, model: StreamModel, points: int = 3) -> None:  # noqa: ANN001
    """Three recovery points, each after two change sets; manifests published too."""
    for rp in range(points):
        for step in range(2):
            model.write((rp * 7 + step) % 50 * BS, bytes([rp * 16 + step + 1]) * 6 * BS)
            model.zero((rp * 3 + 20) * BS, BS)
            publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=step == 1))
        publish_manifest(tm.clients, tm.topics, model.manifest(label=f"point {rp + 1}"))


def test_applies_verifies_and_reverts(tm, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-a", 64 * BS, block_size=BS, extent_bytes=2 * BS, compression="LZ4")
    register(tm.clients, tm.topics, model)
    _history(tm, model)
    mirror = tmp_path / "mirror.img"
    summary = _apply(tm, model.volume, mirror)
    assert (summary.changesets, summary.rp_id, summary.dead_letters) == (6, 3, 0)
    assert mirror.read_bytes() == bytes(model.image)

    report = run_verify(tm.clients, tm.topics, tm.settings.state_dir, VerifyRequest(model.volume, mirror))
    assert report.identical and report.blocks_checked > 0 and not report.notes
    old = run_verify(tm.clients, tm.topics, tm.settings.state_dir, VerifyRequest(model.volume, mirror, rp=1))
    assert old.identical

    status = latest_statuses(tm.clients, tm.topics, model.volume)["default"]
    assert (status["state"], status["rp_id"], status["changeset_id"], status["lag_events"]) == (
        "REPLICATING",
        3,
        6,
        0,
    )

    reverted = revert_mirror(tm.settings.state_dir, "default", model.volume, mirror, 1)
    assert mirror.read_bytes() == model.points[1]
    assert reverted.blocks > 0
    # a restarted applier resumes forward from the point and re-creates the undo data
    summary = _apply(tm, model.volume, mirror)
    assert (summary.changesets, summary.rp_id) == (4, 3)
    assert mirror.read_bytes() == bytes(model.image)
    again = run_verify(tm.clients, tm.topics, tm.settings.state_dir, VerifyRequest(model.volume, mirror, rp=2))
    assert again.identical


def test_reemission_is_harmless_and_sites_progress_independently(tm, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-b", 32 * BS, block_size=BS, extent_bytes=4 * BS)
    register(tm.clients, tm.topics, model)
    model.write(0, b"a" * 8 * BS)
    first = model.seal(cut=True)
    model.write(4 * BS, b"b" * 8 * BS)
    second = model.seal(cut=True)
    publish_changesets(tm.clients, tm.topics, model.volume, first + second[:1] + second + first + second)

    near, far = tmp_path / "near.img", tmp_path / "far.img"
    assert _apply(tm, model.volume, near, site="near", until_rp=1).rp_id == 1
    assert _apply(tm, model.volume, far, site="far").rp_id == 2
    assert near.read_bytes() == model.points[1]
    assert far.read_bytes() == model.points[2]
    assert _apply(tm, model.volume, near, site="near").rp_id == 2
    assert near.read_bytes() == far.read_bytes() == bytes(model.image)
    statuses = latest_statuses(tm.clients, tm.topics, model.volume)
    assert {site: s["rp_id"] for site, s in statuses.items()} == {"near": 2, "far": 2}


def test_bad_input_goes_to_dead_letters(tm, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-c", 16 * BS, block_size=BS)
    register(tm.clients, tm.topics, model)
    model.write(0, b"1" * BS)
    good = model.seal(cut=True)
    model.write(BS, b"2" * BS)
    second = model.seal()
    bad_seal = (second[-1][0], dict(second[-1][1], digest=b"\0" * 8))
    publish_changesets(tm.clients, tm.topics, model.volume, good + second[:-1] + [bad_seal])
    registry_record = records.volume(name=model.volume, size=16 * BS, block_size=BS, created_at=0)
    stray = default_codec().encode("Volume", registry_record)  # a registry event on the change-set topic
    publish_raw(tm.clients, tm.topics, model.volume, [b"not an event", stray])

    mirror = tmp_path / "mirror.img"
    summary = _apply(tm, model.volume, mirror)
    assert (summary.changeset_id, summary.dead_letters) == (1, 3)
    assert mirror.read_bytes() == model.points[1]
    letters = list(read_records(tm.clients, tm.topics.dead_letters, "DeadLetter"))
    reasons = sorted(letter["reason"] for letter in letters)
    assert any("digest" in r for r in reasons) and any("marker" in r for r in reasons), reasons
    assert any("record type Volume does not belong on the changesets topic" in r for r in reasons), reasons
    assert {letter["volume"] for letter in letters} == {model.volume}
    assert b"not an event" in {letter["value"] for letter in letters}
    assert latest_statuses(tm.clients, tm.topics, model.volume)["default"]["state"] == "ERROR"

    publish_changesets(tm.clients, tm.topics, model.volume, second)  # the processor re-emits it
    assert _apply(tm, model.volume, mirror).changeset_id == 2
    assert mirror.read_bytes() == bytes(model.image)


def test_retention_expires_points(tm, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-d", 64 * BS, block_size=BS)
    register(tm.clients, tm.topics, model)
    _history(tm, model, points=4)
    mirror = tmp_path / "mirror.img"
    summary = _apply(tm, model.volume, mirror, retention=Retention(count=2))
    assert summary.expired == [1, 2]
    state = progress_file.load(MirrorLayout.of(tm.settings.state_dir, "default", model.volume).progress)
    assert state is not None and state.retained() == [3, 4]
    with pytest.raises(UnknownRecoveryPointError, match="retained points: 3, 4"):
        revert_mirror(tm.settings.state_dir, "default", model.volume, mirror, 1)
    revert_mirror(tm.settings.state_dir, "default", model.volume, mirror, 3)
    assert mirror.read_bytes() == model.points[3]
