"""`tidemark replay` and `tidemark track scan` through the real tracker and broker."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from tidemark.producers.replay import map_write
from tidemark.producers.traces import read_trace
from tidemark.schemas.codec import default_codec

from ...conftest import CliRunner, TidemarkTest
from ...unit.producers.traces_dir import sample

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
BS = 4096
DELIVERY_LIMIT_S = 60.0


def _block_writes(tm: TidemarkTest, volume: str, count: int) -> list[dict[str, Any]]:
    """The volume's BlockWrite events, in seq order, once `count` of them arrived."""
    codec = default_codec()
    consumer = tm.clients.consumer(tm.group("replay-scan"))
    consumer.subscribe([tm.topics.writes])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + DELIVERY_LIMIT_S
    try:
        while len(found) < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            record_type, record = codec.decode(msg.value() or b"")
            if record_type == "BlockWrite" and record["volume"] == volume:
                found.append(record)
    finally:
        consumer.close()
    return sorted(found, key=lambda r: (r["epoch"], r["seq"]))


def _apply(events: list[dict[str, Any]], size: int) -> bytes:
    mirror = bytearray(size)
    for event in events:
        assert event["compression"] == "NONE"
        payload = event["data"] if event["op"] == "WRITE" else bytes(event["length"])
        mirror[event["offset"] : event["offset"] + event["length"]] = payload
    return bytes(mirror)


@pytest.mark.parametrize("fmt", ["msr", "systor", "disksim"])
def test_replay_publishes_one_event_per_write_piece(tm: TidemarkTest, cli: CliRunner, tmp_path: Path, fmt: str) -> None:
    size = 64 * MIB
    trace = sample(fmt)
    image = tmp_path / "source.img"
    image.write_bytes(b"")
    os.truncate(image, size)
    cli("volume", "add", "replayed", "--size", str(size))
    cli("replay", str(trace), "--format", fmt, "--volume", "replayed", "--image", str(image), "--seed", "5")
    extent = tm.settings.extent_bytes
    expected = sum(
        -(-map_write(r.offset, r.size, size, BS)[0].length // extent) for r in read_trace(trace, fmt) if r.is_write
    )
    events = _block_writes(tm, "replayed", expected)
    assert len(events) == expected
    assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[0]["seq"] + expected))
    assert _apply(events, size) == image.read_bytes()


def test_scan_seeds_then_publishes_only_changed_blocks(tm: TidemarkTest, cli: CliRunner, tmp_path: Path) -> None:
    size = 16 * MIB
    image = tmp_path / "disk.img"
    rng = random.Random(9)
    with image.open("wb") as handle:
        handle.truncate(size)
        handle.seek(2 * MIB)
        handle.write(rng.randbytes(MIB))
    cli("volume", "add", "scanned", "--size", str(size))
    cli("track", "scan", "--volume", "scanned", "--image", str(image))
    changed = {10, 600, 3000}
    fd = os.open(image, os.O_WRONLY)
    try:
        for block in changed:
            os.pwrite(fd, rng.randbytes(BS), block * BS)
    finally:
        os.close(fd)
    cli("track", "scan", "--volume", "scanned", "--image", str(image))
    seed_blocks = MIB // BS
    events = _block_writes(tm, "scanned", count=-(-seed_blocks * BS // tm.settings.extent_bytes) + 3)
    last_epoch = max(e["epoch"] for e in events)
    second = [e for e in events if e["epoch"] == last_epoch]
    assert {b for e in second for b in range(e["offset"] // BS, (e["offset"] + e["length"]) // BS)} == changed
    assert _apply(events, size) == image.read_bytes()
