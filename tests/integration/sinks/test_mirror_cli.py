"""`tidemark mirror|rp|revert|verify` as subprocesses: kill -9 during apply, then restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tidemark.schemas.codec import default_codec
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.reading.topic_reader import read_messages

from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, publish_manifest, register

pytestmark = [pytest.mark.integration, pytest.mark.fault]

BS = 4096
BLOCKS = 1024  # 4 MiB volume


def _changeset_id(progress: Path) -> int:
    try:
        return json.loads(progress.read_text())["changeset_id"]
    except (OSError, ValueError):
        return 0


def test_kill_9_during_apply_then_restart_verifies(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-k", BLOCKS * BS, block_size=BS, extent_bytes=64 * 1024)
    register(tm.clients, tm.topics, model)
    sets = 120
    for n in range(sets):
        first = (n * 37) % (BLOCKS - 64)
        model.write(first * BS, os.urandom(64 * BS))
        cut = n % 20 == 19
        publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=cut))
        if cut:
            publish_manifest(tm.clients, tm.topics, model.manifest())
    mirror = tmp_path / "mirror.img"
    progress = MirrorLayout.of(tm.settings.state_dir, "default", model.volume).progress
    command = [sys.executable, "-m", "tidemark.cli", "mirror", "--volume", model.volume, "--path", str(mirror)]
    child = subprocess.Popen(command, env=tm.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _changeset_id(progress) < 10 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        assert child.poll() is None, "the applier exited before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    killed_at = _changeset_id(progress)
    assert 10 <= killed_at < sets

    result = cli("mirror", "--volume", model.volume, "--path", str(mirror), "--exit-when-idle", "2")
    assert f"now at change set {sets}" in result.stdout
    assert mirror.read_bytes() == bytes(model.image)
    assert "identical" in cli("verify", "--volume", model.volume, "--mirror", str(mirror)).stdout
    source = tmp_path / "source.img"
    source.write_bytes(model.points[2])
    assert (
        "identical"
        in cli("verify", "--volume", model.volume, "--mirror", str(mirror), "--source", str(source), "--rp", "2").stdout
    )
    differs = cli("verify", "--volume", model.volume, "--mirror", str(mirror), "--source", str(source), check=False)
    assert differs.returncode == 3 and "DIFFERENT" in differs.stdout and "offset" in differs.stdout

    reverted = cli("revert", "--volume", model.volume, "--mirror", str(mirror), "--to", "2")
    assert "rewrote" in reverted.stdout
    assert mirror.read_bytes() == model.points[2]
    listing = cli("rp", "list", "--volume", model.volume).stdout
    assert "default" in listing and "PERIODIC" in listing
    points = json.loads(cli("rp", "list", "--volume", model.volume, "--json").stdout)["points"]
    assert [p["rp_id"] for p in points] == sorted(p["rp_id"] for p in points) and len(points) >= 2, points
    assert points[0]["sites"] == ["default"] and {p["kind"] for p in points} == {"PERIODIC"}, points


def test_revert_refuses_while_the_applier_runs(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-l", 16 * BS, block_size=BS)
    register(tm.clients, tm.topics, model)
    model.write(0, b"x" * BS)
    publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=True))
    mirror = tmp_path / "mirror.img"
    command = [sys.executable, "-m", "tidemark.cli", "mirror", "--volume", model.volume, "--path", str(mirror)]
    child = subprocess.Popen(command, env=tm.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        progress = MirrorLayout.of(tm.settings.state_dir, "default", model.volume).progress
        deadline = time.monotonic() + 60
        while _changeset_id(progress) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = cli("revert", "--volume", model.volume, "--mirror", str(mirror), "--to", "1", check=False)
        assert refused.returncode != 0 and "stop `tidemark mirror" in refused.stderr
    finally:
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and "recovery point 1" in out


def test_rp_create_publishes_a_requested_marker(tm, cli) -> None:  # noqa: ANN001
    refused = cli("rp", "create", "--volume", "vol-m", "--label", "before upgrade", check=False)
    assert refused.returncode != 0 and "unknown volume 'vol-m'" in refused.stderr  # a marker nobody folds
    register(tm.clients, tm.topics, StreamModel("vol-m", BLOCKS * BS, block_size=BS))
    cli("rp", "create", "--volume", "vol-m", "--label", "before upgrade")
    found = [default_codec().decode(m.value() or b"") for m in read_messages(tm.clients, tm.topics.writes, "vol-m")]
    assert [(kind, r["kind"], r["label"]) for kind, r in found] == [("Marker", "REQUESTED", "before upgrade")]
    assert found[0][1]["timestamp"] > 1_600_000_000 * 10**6  # microseconds
    assert found[0][1]["generation"] == 0
