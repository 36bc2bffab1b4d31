"""fio (nbd engine, libnbd) through `tidemark track nbd` in both acknowledgement modes, with plain
writes served in Python as well as in C (`--no-native-writes`), and with a pull-ahead bound so small
that the tracker keeps switching to marking dirty blocks and draining them from the image: fio's own
crc32c verify pass succeeds (every block reads back as written), and the writes topic rebuilds the
image exactly once the tracker stopped cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tidemark.core.nbd import inline_writes

from ...conftest import CliRunner, TidemarkTest
from .nbd_harness import (
    TrackerProcess,
    block_writes,
    check_events,
    check_seqs_increase,
    first_difference,
    read_journal,
    rebuild,
)

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

MIB = 1024 * 1024
BS = 4096
VOLUME = "disk0"
SIZE = 32 * MIB


@pytest.mark.parametrize(
    "options",
    [
        ("--ack", "local"),
        ("--ack", "local", "--no-native-writes"),
        ("--ack", "kafka"),
        ("--ack", "local", "--unshipped-max-mib", "1"),
    ],
    ids=["local", "local-python-writes", "kafka", "local-pull-ahead"],
)
def test_fio_verify_passes_through_the_tracker_and_the_topic_rebuilds_the_image(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, trackers: list[TrackerProcess], options: tuple[str, ...]
) -> None:
    cli("volume", "add", VOLUME, "--size", str(SIZE))
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(SIZE)
    tracker = TrackerProcess(tm.env, VOLUME, image, tmp_path / "logs", 0, *options)
    trackers.append(tracker)
    job = [
        "fio", "--name=verify", "--ioengine=nbd", f"--uri={tracker.uri}", "--rw=randwrite", "--bsrange=4k-64k",
        "--iodepth=16", f"--size={SIZE}", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--randrepeat=0",
    ]  # fmt: skip
    fio = subprocess.run(
        job, cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False
    )  # fio leaves its verify state file in its working folder
    assert fio.returncode == 0, f"fio failed:\n{fio.stdout}\n{fio.stderr}\n{tracker.output()}"
    assert "err= 0" in fio.stdout and "READ:" in fio.stdout, f"fio did not read back to verify:\n{fio.stdout}"
    assert tracker.stop() == 0, tracker.output()
    native = inline_writes.available() and "--no-native-writes" not in options and "kafka" not in options
    served_in = "in C" if native else "in Python"
    assert f"plain writes are served {served_in}" in tracker.output(), tracker.output()
    if "--unshipped-max-mib" in options:
        assert "drained; publishing every write again" in tracker.output().split("epoch 1", 1)[-1], (
            "the tracker never pulled ahead under a 1 MiB bound"
        )

    writes = block_writes(read_journal(tm.clients, tm.topics.writes, VOLUME, timeout=120))
    check_events(writes, SIZE, BS, tm.settings.extent_bytes)
    check_seqs_increase(writes, gap_free=True)
    final = image.read_bytes()
    mirror = rebuild(writes, SIZE)
    assert mirror == final, first_difference(mirror, final, BS)
