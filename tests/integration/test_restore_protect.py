"""`tidemark restore --protect` through every real stage: the restored destination becomes the
volume's primary (a new generation) behind a tracker, and its first recovery point reaches the mirror.

The old primary's tracker writes two points and stops (the primary is lost); the mirror holds both.
The tracker records what the last client read first (its read profile), which the restore
copies first. Point 1 is restored while a client writes through the restore; once relocated, the same process
serves the destination through a tracker, seeded with the blocks where the destination differs
from the mirror (changed since point 1 on the mirror, written by the client). After one more write
and `rp create`, the mirror holds the new point and equals the destination byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroaring import BitMap

from tidemark.core.volumes import lookup_volume
from tidemark.sinks.restore.profile import latest_profile

from ..conftest import CliRunner, TidemarkTest
from .pipeline_harness import Pipeline
from .producers.nbd_harness import qemu_io

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

MIB = 1 << 20
URL = re.compile(r"serving recovery point .*: (nbd://\S+)")
TRACKED = re.compile(r"protecting .*: (nbd://\S+)")


@pytest.fixture
def pipeline(tm: TidemarkTest, cli: CliRunner, tmp_path: Path) -> Iterator[Pipeline]:
    made = Pipeline(tm, cli, tmp_path, "vol-protect", 8 * MIB)
    try:
        yield made
    finally:
        made.close()


def test_protect_hands_the_destination_to_a_tracker_whose_point_reaches_the_mirror(
    tm: TidemarkTest, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.start_tracker()
    pipeline.start_processor()
    pipeline.start_mirror()
    pipeline.write(["write -P 0x11 0 2M", "write -P 0x12 3M 2M"])
    point = pipeline.copy_source("point.img").read_bytes()
    first = pipeline.cut("before")
    pipeline.write(["write -P 0x21 512k 256k", "write -P 0x22 7M 64k"])  # the mirror moves past the point
    pipeline.wait_held(pipeline.cut("later"))
    pipeline.write(["read 3M 64k"])  # the last client's first reads: the tracker's read profile
    pipeline.stop_tracker()  # the primary is lost
    profile = latest_profile(tm.clients, tm.topics, pipeline.volume, 4096)
    assert profile is not None and BitMap(range(768, 784)) <= profile, profile

    destination = tmp_path / "restored.img"
    restore = pipeline.service(
        "restore",
        ["restore", "--volume", pipeline.volume, "--rp", str(first), "--to", str(destination),
         "--listen", "127.0.0.1:0", "--max-rate", "1", "--protect"],
    )  # fmt: skip
    url = restore.wait_for_output(URL).group(1)
    qemu_io(url, ["write -P 0x33 2M 64k", "flush"])
    tracked = restore.wait_for_output(TRACKED, timeout=120).group(1)
    qemu_io(tracked, ["write -P 0x44 5M 8k", "flush"])
    expected = bytearray(point)
    expected[2 * MIB : 2 * MIB + 64 * 1024] = b"\x33" * 64 * 1024
    expected[5 * MIB : 5 * MIB + 8192] = b"\x44" * 8192

    spec = lookup_volume(tm.clients, tm.topics, pipeline.volume)
    assert spec.generation == 1, spec
    pipeline.wait_held(pipeline.cut("protected"))
    assert destination.read_bytes() == bytes(expected)
    assert pipeline.mirror.read_bytes() == bytes(expected), "the mirror does not follow the restored primary"
    assert restore.stop() == 0, restore.output()
    staged = re.search(r"copying the (\d+) pending blocks of the read profile first", restore.output())
    assert staged and int(staged.group(1)) >= 16, restore.output()
