"""One primary at a time, the tracker's part, through the real broker and a real NBD client.

- qemu-io writes to `tidemark track nbd` succeed until the registry record of the volume moves to
  the next generation (what a failover writes), then fail within 5 s; reads and flushes still
  work, and every BlockWrite and Marker the tracker published carries the generation it started
  with.
- A tracker started for a site that is not the volume's primary refuses to start, naming it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tidemark.core.volumes import lookup_volume
from tidemark.schemas.codec import default_codec

from ...conftest import CliRunner, TidemarkTest
from .nbd_harness import TrackerProcess, block_writes, markers, qemu_io, read_journal

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

MIB = 1 << 20
VOLUME = "fenced0"
FENCE_LIMIT_S = 5.0


def _image(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def _register(tm: TidemarkTest, generation: int, primary_site: str | None) -> None:
    """The registry record of VOLUME with this generation and site (what a failover publishes)."""
    record = lookup_volume(tm.clients, tm.topics, VOLUME).to_record() | {
        "generation": generation,
        "primary_site": primary_site,
    }
    producer = tm.clients.producer()
    producer.produce(tm.topics.volumes, key=VOLUME.encode(), value=default_codec().encode("Volume", record))
    assert producer.flush(30) == 0


def _write(uri: str, offset: int) -> subprocess.CompletedProcess[str]:
    args = ["qemu-io", "-f", "raw", uri, "-c", f"write -P 7 {offset} 4096"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)


def _refused(result: subprocess.CompletedProcess[str]) -> bool:
    text = result.stdout + result.stderr
    return result.returncode != 0 or "failed" in text or "read-only" in text.lower()


def test_writes_fail_within_5s_of_a_newer_generation(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, trackers: list[TrackerProcess]
) -> None:
    cli("volume", "add", VOLUME, "--size", str(16 * MIB))
    _register(tm, 3, None)
    image = _image(tmp_path / "disk.img", 16 * MIB)
    tracker = TrackerProcess(tm.env, VOLUME, image, tmp_path / "logs")
    trackers.append(tracker)
    for index in range(5):
        result = _write(tracker.uri, index * 4096)
        assert not _refused(result), f"write {index} before the bump failed:\n{result.stdout}{result.stderr}"

    _register(tm, 4, "dr1")
    bumped = time.monotonic()
    while True:
        result = _write(tracker.uri, 64 * 4096)
        if _refused(result):
            break
        assert time.monotonic() - bumped < FENCE_LIMIT_S, "writes still succeed 5 s after the generation bump"
        time.sleep(0.2)
    assert time.monotonic() - bumped < FENCE_LIMIT_S + 1
    qemu_io(tracker.uri, ["read -P 7 0 4096", "flush"])  # reads and flushes still work
    assert tracker.stop() == 0
    assert "generation 4" in tracker.output() and "Stop this tracker" in tracker.output()

    events = read_journal(tm.clients, tm.topics.writes, VOLUME)
    writes = block_writes(events)
    assert len(writes) >= 5
    assert {write["generation"] for write in writes} == {3}
    assert {marker["generation"] for marker in markers(events, "EPOCH_START")} == {3}


def test_a_tracker_for_another_site_than_the_primary_refuses_to_start(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path
) -> None:
    cli("volume", "add", VOLUME, "--size", str(16 * MIB))
    _register(tm, 1, "dr1")
    image = _image(tmp_path / "disk.img", 16 * MIB)
    result = cli("track", "nbd", "--volume", VOLUME, "--image", str(image), "--listen", "127.0.0.1:0",
                 "--site", "dc1", check=False)  # fmt: skip
    assert result.returncode != 0
    assert "its primary is site 'dr1'" in result.stdout + result.stderr
