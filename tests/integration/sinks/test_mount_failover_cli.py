"""`tidemark mount|failover|failback` as subprocesses against the real broker."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tidemark.core.volumes import lookup_volume
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.status import latest_statuses

from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, register

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

BS = 4096
BLOCKS = 512


@contextmanager
def serving(tm, *args: str) -> Iterator[str]:  # noqa: ANN001
    """Run `tidemark mount ARGS` until the block exits; yields the NBD URL it prints."""
    command = [sys.executable, "-m", "tidemark.cli", "mount", *args, "--listen", "127.0.0.1:0"]
    child = subprocess.Popen(command, env=tm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stderr is not None
        line = child.stdout.readline()
        found = re.search(r"nbd://\S+", line)
        assert found, f"no URL from mount: {line!r} {child.stderr.read() if child.poll() is not None else ''}"
        yield found.group(0)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(30)
        assert child.returncode == 0, child.stderr.read() if child.stderr else ""
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def client(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "failed" not in done.stdout.lower(), done.stdout + done.stderr
    return done.stdout


def test_mount_failover_failback_round_trip(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-f", BLOCKS * BS, block_size=BS)
    register(tm.clients, tm.topics, model)
    for n in range(4):
        model.write((n * 50) * BS, os.urandom(40 * BS))
        publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=n < 3))
    mirror = tmp_path / "mirror.img"
    cli("mirror", "--volume", model.volume, "--path", str(mirror), "--exit-when-idle", "2")
    undo = MirrorLayout.of(tm.settings.state_dir, "default", model.volume).undo
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in undo.iterdir() if p.is_file()}
    assert modes and set(modes.values()) == {0o600}, modes  # RocksDB's files too (umask 077)
    assert stat.S_IMODE(undo.stat().st_mode) == 0o700
    model.write(400 * BS, os.urandom(8 * BS))  # the primary goes on; the mirror does not apply it
    publish_changesets(tm.clients, tm.topics, model.volume, model.seal())
    primary = tmp_path / "primary.img"
    primary.write_bytes(bytes(model.image))

    with serving(tm, "--volume", model.volume, "--rp", "2") as url:
        client("nbdcopy", url, str(tmp_path / "rp2.raw"))
    assert (tmp_path / "rp2.raw").read_bytes() == model.points[2]

    out = cli("failover", "--volume", model.volume, "--mirror", str(mirror)).stdout
    assert "at recovery point 3" in out and "tidemark mount" in out
    assert mirror.read_bytes() == model.points[3]
    assert latest_statuses(tm.clients, tm.topics, model.volume)["default"]["state"] == "FAILED_OVER"
    fenced = lookup_volume(tm.clients, tm.topics, model.volume)
    assert (fenced.generation, fenced.primary_site) == (1, "default") and "generation 1" in out
    refused = cli("mirror", "--volume", model.volume, "--path", str(mirror), "--exit-when-idle", "1", check=False)
    assert refused.returncode != 0 and "failed over" in refused.stderr

    with serving(tm, "--volume", model.volume) as url:
        client("qemu-io", "-f", "raw", url, "-c", "write -P 0x61 0 8k", "-c", "flush")

    before, promoted = primary.read_bytes(), mirror.read_bytes()
    differing = sum(before[b * BS : (b + 1) * BS] != promoted[b * BS : (b + 1) * BS] for b in range(BLOCKS))
    out = cli("failback", "--volume", model.volume, "--mirror", str(mirror), "--primary", str(primary)).stdout
    found = re.search(r"compared (\d+) blocks, copied (\d+) blocks", out)
    assert found, out
    compared, copied = int(found.group(1)), int(found.group(2))
    assert copied == differing > 0  # set 4 (reverted), set 5 (never applied), the promoted write
    assert copied <= compared < BLOCKS
    assert primary.read_bytes() == mirror.read_bytes()
    assert latest_statuses(tm.clients, tm.topics, model.volume)["default"]["state"] == "PAUSED"
    back = lookup_volume(tm.clients, tm.topics, model.volume)
    assert (back.generation, back.primary_site) == (2, None) and "0 blocks changed on both sides" in out

    resumed = cli("mirror", "--volume", model.volume, "--path", str(mirror), "--exit-when-idle", "2").stdout
    assert "applied 0 change sets" in resumed and "now at change set 5" in resumed
