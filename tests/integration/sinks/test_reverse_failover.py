"""`tidemark failover --reverse`, then `tidemark rejoin`: the old primary follows the new one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tidemark.core.volumes import lookup_volume

from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, register

pytestmark = pytest.mark.integration

BS = 4096
BLOCKS = 256


def test_reverse_failover_then_rejoin(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-rev", BLOCKS * BS, block_size=BS)
    register(tm.clients, tm.topics, model)
    for n in range(3):
        model.write(n * 40 * BS, os.urandom(20 * BS))
        publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=n < 2))
    mirror = tmp_path / "west.img"
    cli("mirror", "--volume", model.volume, "--site", "west", "--path", str(mirror), "--exit-when-idle", "2")
    old = tmp_path / "east.img"
    old.write_bytes(bytes(model.image))  # the old primary holds set 3, which the failover reverts

    out = cli("failover", "--volume", model.volume, "--site", "west", "--mirror", str(mirror), "--reverse").stdout
    track = f"tidemark track nbd --volume {model.volume} --image {mirror} --site west --listen 127.0.0.1:10809"
    assert track in out and "generation 1" in out and "tidemark rejoin" in out, out
    spec = lookup_volume(tm.clients, tm.topics, model.volume)
    assert (spec.generation, spec.primary_site) == (1, "west")

    model.image[:] = mirror.read_bytes()  # the new primary (tracked) writes; its sets reach the stream
    model.generation = spec.generation  # sealed under the generation the failover fenced with
    model.write(100 * BS, os.urandom(4 * BS))
    publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=True))
    with mirror.open("r+b") as image:
        image.seek(100 * BS)
        image.write(model.image[100 * BS : 104 * BS])

    out = cli("rejoin", "--volume", model.volume, "--site", "east", "--from-site", "west", "--image", str(old)).stdout
    assert f"rejoined {old}" in out, out
    assert old.read_bytes() == mirror.read_bytes()
    model.write(200 * BS, os.urandom(4 * BS))  # and the next one is applied by the rejoined mirror
    publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=True))
    cli("mirror", "--volume", model.volume, "--site", "east", "--path", str(old), "--exit-when-idle", "2")
    assert old.read_bytes() == bytes(model.image)
    refused = cli("mirror", "--volume", model.volume, "--site", "west", "--path", str(mirror), "--exit-when-idle", "1",
                  check=False)  # fmt: skip
    assert refused.returncode != 0 and "failed over" in refused.stderr
