"""The NBD server driven by real clients (qemu-io, qemu-img, nbdcopy, nbdinfo) as subprocesses."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from tidemark.core.blocks import block_range

from .conftest import BLOCK, VOLUME, RunningServer

pytestmark = pytest.mark.nbd

MIB = 1024 * 1024


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command[0]} failed ({done.returncode}): {done.stdout}{done.stderr}"
    return done.stdout


def qemu_io(server: RunningServer, *commands: str) -> str:
    args = [arg for command in commands for arg in ("-c", command)]
    return run("qemu-io", "-f", "raw", server.url(), *args)


def covered_blocks(server: RunningServer, *ops: str) -> set[int]:
    return {b for c in server.tracker.ops(*ops) for b in block_range(c.offset, c.length, BLOCK)}


def assert_mirror_matches(server: RunningServer) -> bytes:
    image = server.image_bytes()
    assert bytes(server.tracker.mirror) == image, "events replayed on a mirror differ from the image"
    return image


def test_aligned_write_then_read_back(server) -> None:
    qemu_io(server, "write -P 0xab 0 64k", "read -P 0xab 0 64k")
    image = assert_mirror_matches(server)
    assert image[: 64 * 1024] == b"\xab" * 64 * 1024
    assert image[64 * 1024 :] == bytes(len(image) - 64 * 1024)
    writes = server.tracker.ops("WRITE")
    assert [(c.offset, c.length) for c in writes] == [(0, 64 * 1024)]
    assert [(c.offset, c.length) for c in server.tracker.ops("INTENT")] == [(0, 64 * 1024)]


def test_unaligned_write_publishes_the_covering_blocks(server) -> None:
    qemu_io(server, "write -P 0xcd 512 1000", "write -P 0xef 8190 10")
    image = assert_mirror_matches(server)
    assert image[512:1512] == b"\xcd" * 1000 and image[8190:8200] == b"\xef" * 10
    assert [(c.offset, c.length) for c in server.tracker.ops("WRITE")] == [(0, BLOCK), (BLOCK, 2 * BLOCK)]
    assert covered_blocks(server, "WRITE") == {0, 1, 2}


def test_write_zeroes_and_discard(server) -> None:
    qemu_io(server, "write -P 0x11 0 64k")
    qemu_io(server, "write -z 8k 8k", "write -z -u 16k 8k", "write -z 100 5000", "discard 40000 20000")
    image = assert_mirror_matches(server)
    expected = bytearray(b"\x11" * 64 * 1024)
    for offset, length in ((8192, 8192), (16384, 8192), (100, 5000), (40000, 20000)):
        expected[offset : offset + length] = bytes(length)
    assert image[: 64 * 1024] == bytes(expected)
    assert covered_blocks(server, "ZERO") == {2, 3, 4, 5}
    assert covered_blocks(server, "TRIM") == set(range(10, 14))  # 40960..57344; edges read back
    edges = [(c.offset, c.length) for c in server.tracker.ops("WRITE")][1:]
    assert edges == [(0, 2 * BLOCK), (9 * BLOCK, BLOCK), (14 * BLOCK, BLOCK)]


def test_flush_publishes_a_flush_marker(server) -> None:
    qemu_io(server, "write -P 0x22 0 4k", "flush")
    kinds = [(c.op, c.kind) for c in server.tracker.ops("WRITE", "FLUSH", "MARKER")]
    assert ("MARKER", "FLUSH") in kinds
    assert kinds.index(("WRITE", None)) < kinds.index(("FLUSH", None)) < kinds.index(("MARKER", "FLUSH"))


def test_nbdinfo_sees_size_name_and_flags(server) -> None:
    info = json.loads(run("nbdinfo", "--json", server.url()))
    (export,) = info["exports"]
    assert export["export-name"] == VOLUME
    assert export["export-size"] == server.tracker.size
    assert export["block_size_preferred"] == BLOCK
    assert (export["can_flush"], export["can_fua"], export["can_trim"], export["can_zero"]) == (True,) * 4
    assert (export["can_multi_conn"], export["can_cache"], export["can_fast_zero"]) == (True,) * 3
    assert export["is_read_only"] is False
    assert info["structured"] is True


def test_200_random_writes_match_a_model(server) -> None:
    rng = random.Random(3)
    model = bytearray(server.tracker.size)
    commands = []
    for _ in range(200):
        length = rng.randint(1, 64 * 1024)
        offset = rng.randrange(0, len(model) - length)
        pattern = rng.randrange(1, 256)
        model[offset : offset + length] = bytes([pattern]) * length
        commands.append(f"write -P {pattern} {offset} {length}")
    qemu_io(server, *commands)
    assert assert_mirror_matches(server) == bytes(model)
    assert len(server.tracker.ops("WRITE")) == 200


def test_concurrent_overlapping_writes_keep_mirror_and_image_equal(server) -> None:
    rng = random.Random(7)
    commands = []
    for _ in range(1000):
        length = rng.randint(1, 3 * BLOCK)
        offset = rng.randrange(0, 32 * 1024)  # a small region: many writes overlap in flight
        commands.append(f"aio_write -P {rng.randrange(256)} {offset} {length}")
    qemu_io(server, *commands, "aio_flush")
    assert_mirror_matches(server)


def test_nbdcopy_of_a_random_file(make_server, tmp_path: Path) -> None:
    server = make_server(size=64 * MIB)
    source = tmp_path / "source.raw"
    source.write_bytes(random.Random(11).randbytes(64 * MIB))
    run("nbdcopy", str(source), server.url())
    image = assert_mirror_matches(server)
    assert image == source.read_bytes()
    assert covered_blocks(server, "WRITE", "ZERO", "TRIM") == set(range(64 * MIB // BLOCK))


def test_qemu_img_convert_into_the_export(make_server, tmp_path: Path) -> None:
    server = make_server(size=16 * MIB)
    server.image.write_bytes(b"\xff" * 16 * MIB)  # old content that convert must overwrite
    source = tmp_path / "source.raw"
    with source.open("wb") as handle:
        handle.truncate(16 * MIB)
        rng = random.Random(5)
        for offset in (0, 3 * MIB + 512, 9 * MIB):
            handle.seek(offset)
            handle.write(rng.randbytes(MIB))
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(source), server.url())
    image = assert_mirror_matches(server)
    assert image == source.read_bytes()
