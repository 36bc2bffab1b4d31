"""`tidemark status` shows the points a mount, revert, failover or verify has pinned."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.storage.pins import pinned

from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, register

pytestmark = pytest.mark.integration

BS = 4096


def test_status_shows_pinned_points(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-pin", 64 * BS, block_size=BS)
    register(tm.clients, tm.topics, model)
    for _ in range(2):
        model.write(0, os.urandom(8 * BS))
        publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=True))
    cli("mirror", "--volume", model.volume, "--path", str(tmp_path / "m.img"), "--exit-when-idle", "2")
    layout = MirrorLayout.of(tm.settings.state_dir, "default", model.volume)
    with pinned(layout.root, 1, "mount"):
        site = json.loads(cli("status", "--json", "--volume", model.volume).stdout)["volumes"][0]["sites"][0]
        assert (site["site"], site["rp_id"], site["pinned"]) == ("default", 2, [1])
        assert "(pinned: 1)" in cli("status", "--volume", model.volume, env={"COLUMNS": "250"}).stdout
    site = json.loads(cli("status", "--json", "--volume", model.volume).stdout)["volumes"][0]["sites"][0]
    assert site["pinned"] == []
