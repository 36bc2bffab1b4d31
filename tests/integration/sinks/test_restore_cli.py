"""`tidemark restore` as a subprocess: an ext4 point served at once and relocated while a client writes.

The volume is a real ext4 image (`mke2fs -d`) published as change sets and applied by `tidemark
mirror`; point 1 is the filesystem as made, point 2 adds a file after it. The client's writes are
what `debugfs -w` changes in a copy of point 1 (new file, new folder), written through the restore
with qemu-io while `--max-rate` keeps the relocation running. The destination must end as exactly
that copy: e2fsck clean, the client's files on top of point 1, nothing of point 2.
"""

from __future__ import annotations

import random
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tidemark.core.blocks import runs
from tidemark.sinks.restore.record import load_record, relocated_path

from ...conftest import CliRunner, TidemarkTest
from ...unit.sinks.stream_model import StreamModel
from ..pipeline_harness import Service
from .publish import publish_changesets, register

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

BS = 4096
SIZE = 32 << 20
URL = re.compile(r"nbd://\S+")
COMPLETE = re.compile(r"relocation complete")
HELLO = b"written before recovery point 1\n"


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}{done.stderr}"
    return done.stdout


def publish_image(tm: TidemarkTest, model: StreamModel, image: bytes) -> None:
    """The blocks where `image` differs from the model, as one change set completing a point."""
    changed = [b for b in range(SIZE // BS) if image[b * BS : (b + 1) * BS] != model.image[b * BS : (b + 1) * BS]]
    for first, count in runs(changed):
        model.write(first * BS, image[first * BS : (first + count) * BS])
    publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=True))


@dataclass
class Ext4Point:
    volume: str
    point: Path  # the image at recovery point 1
    expected: Path  # point 1 plus the client's changes


def ext4_mirror(tm: TidemarkTest, cli: CliRunner, tmp_path: Path, volume: str) -> Ext4Point:
    """A mirror holding points 1 and 2 of an ext4 volume; the client's changes prepared on a copy."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "hello.txt").write_bytes(HELLO)
    (files / "data.bin").write_bytes(random.Random(7).randbytes(4 << 20))
    point = tmp_path / "point1.img"
    run("mke2fs", "-q", "-F", "-t", "ext4", "-b", str(BS), "-d", str(files), str(point), f"{SIZE >> 10}k")
    model = StreamModel(volume, SIZE, block_size=BS)
    register(tm.clients, tm.topics, model)
    publish_image(tm, model, point.read_bytes())
    later = tmp_path / "point2.img"
    later.write_bytes(point.read_bytes())
    (tmp_path / "later.txt").write_bytes(b"after the point\n" * 100)
    run("debugfs", "-w", "-R", f"write {tmp_path / 'later.txt'} later.txt", str(later))
    publish_image(tm, model, later.read_bytes())
    cli("mirror", "--volume", volume, "--path", str(tmp_path / "mirror.img"), "--exit-when-idle", "2")

    expected = tmp_path / "expected.img"
    expected.write_bytes(point.read_bytes())
    (tmp_path / "client.txt").write_bytes(b"the client wrote this during the restore\n" * 600)
    run("debugfs", "-w", "-R", f"write {tmp_path / 'client.txt'} client.txt", str(expected))
    run("debugfs", "-w", "-R", "mkdir clientdir", str(expected))
    return Ext4Point(volume, point, expected)


def write_changes(url: str, before: Path, after: Path, scratch: Path) -> int:
    """Write the blocks where `after` differs from `before` through NBD (qemu-io, then a flush)."""
    old, new = before.read_bytes(), after.read_bytes()
    changed = [b for b in range(SIZE // BS) if old[b * BS : (b + 1) * BS] != new[b * BS : (b + 1) * BS]]
    commands = []
    for index, (first, count) in enumerate(runs(changed)):
        source = scratch / f"run{index}.bin"
        source.write_bytes(new[first * BS : (first + count) * BS])
        commands += ["-c", f"write -s {source} {first * BS} {count * BS}"]
    out = run("qemu-io", "-f", "raw", url, *commands, "-c", "flush")
    assert "failed" not in out.lower(), out
    return len(changed)


def check_filesystem(image: Path, tmp_path: Path) -> None:
    run("e2fsck", "-fn", str(image))
    assert run("debugfs", "-R", "cat /client.txt", str(image)).encode() == (tmp_path / "client.txt").read_bytes()
    assert run("debugfs", "-R", "cat /hello.txt", str(image)).encode() == HELLO
    listing = run("debugfs", "-R", "ls -l /", str(image))
    assert "clientdir" in listing and "later.txt" not in listing, listing


def restore(tm: TidemarkTest, tmp_path: Path, volume: str, destination: Path, *extra: str) -> Service:
    args = ["restore", "--volume", volume, "--rp", "1", "--to", str(destination), "--listen", "127.0.0.1:0"]
    return Service(tm.env, "restore", [*args, *extra], tmp_path / "logs")


def test_restore_serves_an_ext4_point_while_a_client_writes_and_relocates_it(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path
) -> None:
    fs = ext4_mirror(tm, cli, tmp_path, "ext4-restore")
    destination = tmp_path / "restored.img"
    service = restore(tm, tmp_path, fs.volume, destination, "--max-rate", "1")
    try:
        url = service.wait_for_output(URL).group(0)
        assert write_changes(url, fs.point, fs.expected, tmp_path) > 0
        record = load_record(destination)
        assert record is not None and not record.complete, "the relocation ended before the client wrote"
        read_back = tmp_path / "read.img"
        run("nbdcopy", url, str(read_back))
        assert read_back.read_bytes() == fs.expected.read_bytes()
        service.wait_for_output(COMPLETE, timeout=120)
    finally:
        assert service.stop() == 0, service.output()
    assert destination.read_bytes() == fs.expected.read_bytes()
    check_filesystem(destination, tmp_path)


def test_kill_9_halfway_then_a_restart_gives_the_same_image(tm: TidemarkTest, cli: CliRunner, tmp_path: Path) -> None:
    fs = ext4_mirror(tm, cli, tmp_path, "ext4-restore-kill")
    destination = tmp_path / "restored.img"
    first = restore(tm, tmp_path, fs.volume, destination, "--max-rate", "1")
    try:
        url = first.wait_for_output(URL).group(0)
        write_changes(url, fs.point, fs.expected, tmp_path)  # flushed: the relocation bitmap names them
        assert relocated_path(destination).exists()
        time.sleep(1.5)
    finally:
        first.kill()
    record = load_record(destination)
    assert record is not None and not record.complete, "killed too late: the relocation was complete"

    second = restore(tm, tmp_path, fs.volume, destination, "--max-rate", "4")
    try:
        url = second.wait_for_output(URL).group(0)
        read_back = tmp_path / "read.img"
        run("nbdcopy", url, str(read_back))
        assert read_back.read_bytes() == fs.expected.read_bytes()
        second.wait_for_output(COMPLETE, timeout=120)
    finally:
        assert second.stop() == 0, second.output()
    assert destination.read_bytes() == fs.expected.read_bytes()
    check_filesystem(destination, tmp_path)
