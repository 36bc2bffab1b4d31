"""A recovery point of more than 600,000 changed blocks (512-byte blocks): applied, verified
against its chunked manifest and reverted, end to end through the CLI, in bounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyroaring import BitMap

from tidemark.core.volumes import VolumeSpec, publish_volume
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.storage.undo_store import UndoStore

from .big_point import BigPoint
from .publish import publish_changesets, publish_manifest

pytestmark = pytest.mark.integration

BS = 512
BLOCKS = 640_000
CHANGED = 600_100


def test_a_point_of_600k_blocks_verifies_and_reverts(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    volume, size = "vol-big", BLOCKS * BS
    publish_volume(tm.clients, tm.topics, VolumeSpec(volume, size, BS))
    empty = BigPoint(volume, BS, 0, 0, changeset_id=1, rp_id=1)
    big = BigPoint(volume, BS, 1000, CHANGED, changeset_id=2, rp_id=2)
    for point in (empty, big):
        publish_changesets(tm.clients, tm.topics, volume, point.changeset())
        publish_manifest(tm.clients, tm.topics, list(point.manifest(size)))
    mirror = tmp_path / "big.img"

    applied = cli("mirror", "--volume", volume, "--path", str(mirror), "--exit-when-idle", "2").stdout
    assert "now at change set 2, recovery point 2" in applied
    layout = MirrorLayout.of(tm.settings.state_dir, "default", volume)
    with UndoStore(layout.undo, BS, read_only=True) as undo:
        assert undo.changed_since(1) == BitMap(range(big.first_block, big.first_block + big.count))
        assert all(value == b"" for value in undo._db.values()), "zero pre-images are stored empty"

    listing = cli("rp", "list", "--volume", volume).stdout
    assert "big" in listing and str(CHANGED * BS) in listing
    verified = cli("verify", "--volume", volume, "--mirror", str(mirror), "--rp", "2").stdout
    assert f"identical: {CHANGED} blocks checked" in verified
    with open(mirror, "r+b") as image:  # damage one block of the point: verify --rp names it
        image.seek(123_456 * BS)
        image.write(b"\xff" * BS)
    differs = cli("verify", "--volume", volume, "--mirror", str(mirror), "--rp", "2", check=False)
    assert differs.returncode == 3 and f"offset {123_456 * BS} length {BS}" in differs.stdout

    reverted = cli("revert", "--volume", volume, "--mirror", str(mirror), "--to", "1").stdout
    assert "rewrote" in reverted
    with open(mirror, "rb") as image:
        while chunk := image.read(1 << 24):
            assert chunk.count(0) == len(chunk), "the mirror is back at the empty point"
