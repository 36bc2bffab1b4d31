"""Run `tidemark track nbd` as a real process, drive it with real NBD clients, read its journal back.

Shared by the NBD tracker's Kafka tests (`test_nbd_tracker_kafka.py`, `test_tracker_outage.py`):
- `TrackerProcess`: the CLI in its own process (so a test can SIGKILL it), ready once it printed
  its `nbd://` address;
- `read_journal`: the volume's whole writes partition, decoded, in partition order;
- `check_events` / `rebuild`: every BlockWrite's payload checked against its xxh3, and a mirror
  rebuilt by applying the events in order (what a sink does);
- `dirty_blocks`: the tracker's durable dirty bitmap as it is on disk.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import lz4.frame
import xxhash
import zstandard
from pyroaring import BitMap

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients
from tidemark.core.partitioning import volume_partition
from tidemark.core.settings import Settings
from tidemark.schemas.codec import default_codec

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_READY = re.compile(r"nbd://(?P<host>[^/\s]+):(?P<port>\d+)/")


@dataclass(frozen=True)
class Event:
    """One message of the volume's writes partition."""

    offset: int  # Kafka offset
    type: str  # BlockWrite or Marker
    record: dict[str, Any]


class TrackerProcess:
    """`tidemark track nbd` in a child process; its output goes to files under `logs`.

    It is ready once it printed the `nbd://host:port/volume` it serves (port 0 picks a free one).
    """

    def __init__(self, env: dict[str, str], volume: str, image: Path, logs: Path, port: int = 0, *extra: str) -> None:
        self.volume = volume
        logs.mkdir(parents=True, exist_ok=True)
        run = len(list(logs.glob("tracker-*.out")))
        self.stdout_path = logs / f"tracker-{run}.out"
        self.stderr_path = logs / f"tracker-{run}.err"
        command = [
            sys.executable, "-m", "tidemark.cli", "track", "nbd", "--volume", volume,
            "--image", str(image), "--listen", f"127.0.0.1:{port}", *extra,
        ]  # fmt: skip
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                command, env=env, cwd=logs, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        self.port = self._wait_ready()

    @property
    def uri(self) -> str:
        return f"nbd://127.0.0.1:{self.port}/{self.volume}"

    def output(self) -> str:
        return f"--- tracker stdout\n{self.stdout_path.read_text()}\n--- tracker stderr\n{self.stderr_path.read_text()}"

    def _wait_ready(self) -> int:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            found = _READY.search(self.stdout_path.read_text() + self.stderr_path.read_text())
            if found:
                return int(found["port"])
            if self.process.poll() is not None:
                raise AssertionError(f"the tracker exited {self.process.returncode} before serving\n{self.output()}")
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"the tracker did not serve within {READY_TIMEOUT_S} s\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM (a clean stop: flush, close the activity log) and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or closed."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STOP_TIMEOUT_S)


def qemu_io(uri: str, commands: Sequence[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """One qemu-io process running `commands` in order against the NBD export; must succeed."""
    args = ["qemu-io", "-f", "raw", uri]
    for command in commands:
        args += ["-c", command]
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    failed = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if "failed" in line]
    assert result.returncode == 0 and not failed, f"qemu-io failed:\n{result.stdout}\n{result.stderr}"
    return result


def line_buffered(command: list[str]) -> list[str]:
    """`command` with its stdio line-buffered (stdbuf), so a reader sees progress while it runs."""
    stdbuf = shutil.which("stdbuf")
    return [stdbuf, "-oL", *command] if stdbuf else command


def read_journal(clients: KafkaClients, topic: str, volume: str, timeout: float = 60.0) -> list[Event]:
    """Every message of `volume` on its partition of `topic`, up to the high watermark now."""
    codec = default_codec()
    partition = volume_partition(volume, len(kafka_io.topic_partitions(clients.admin(), topic)))
    events: list[Event] = []
    for msg in kafka_io.read_topic(clients, topic, [partition], timeout=timeout):
        offset, value = msg.offset(), msg.value()
        assert offset is not None and value is not None
        if msg.key() == volume.encode():
            record_type, record = codec.decode(value)
            events.append(Event(offset, record_type, record))
    return events


def block_writes(events: Sequence[Event]) -> list[dict[str, Any]]:
    return [e.record for e in events if e.type == "BlockWrite"]


def markers(events: Sequence[Event], kind: str) -> list[dict[str, Any]]:
    return [e.record for e in events if e.type == "Marker" and e.record["kind"] == kind]


def payload(write: dict[str, Any]) -> bytes:
    """The raw bytes a BlockWrite carries (decompressed; zeros for ZERO and TRIM)."""
    if write["op"] != "WRITE":
        return bytes(write["length"])
    data = write["data"]
    if write["compression"] == "LZ4":
        return bytes(lz4.frame.decompress(data))
    if write["compression"] == "ZSTD":
        return bytes(zstandard.ZstdDecompressor().decompress(data))
    assert write["compression"] == "NONE", write["compression"]
    return bytes(data)


def check_events(writes: Sequence[dict[str, Any]], volume_size: int, block_size: int, extent_bytes: int) -> None:
    """Each event well formed: aligned, inside the volume, at most one extent, xxh3 of its data."""
    for write in writes:
        where = f"seq {write['seq']} (offset {write['offset']}, length {write['length']})"
        assert write["offset"] % block_size == 0 and write["length"] % block_size == 0, where
        assert 0 < write["length"] <= extent_bytes, where
        assert write["offset"] + write["length"] <= volume_size, where
        if write["op"] == "WRITE":
            data = payload(write)
            assert len(data) == write["length"], where
            assert xxhash.xxh3_64_digest(data) == write["checksum"], f"checksum mismatch at {where}"


def check_seqs_increase(writes: Sequence[dict[str, Any]], gap_free: bool) -> None:
    """BlockWrite seqs strictly increasing in partition order (so never reused); optionally gap-free."""
    seqs = [w["seq"] for w in writes]
    assert all(a < b for a, b in pairwise(seqs)), f"seqs not strictly increasing: {_first_disorder(seqs)}"
    if gap_free and seqs:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seqs have gaps"


def _first_disorder(seqs: list[int]) -> str:
    for index, (a, b) in enumerate(pairwise(seqs)):
        if a >= b:
            return f"position {index}: {a} then {b}"
    return "none"


def rebuild(writes: Sequence[dict[str, Any]], size: int) -> bytearray:
    """A mirror built by applying the BlockWrite events in the given order."""
    mirror = bytearray(size)
    for write in writes:
        mirror[write["offset"] : write["offset"] + write["length"]] = payload(write)
    return mirror


def first_difference(a: bytes | bytearray, b: bytes | bytearray, block_size: int) -> str:
    """Where two images differ, for an assertion message."""
    if len(a) != len(b):
        return f"sizes differ: {len(a)} vs {len(b)}"
    view_a, view_b = memoryview(a), memoryview(b)
    for start in range(0, len(a), block_size):
        if view_a[start : start + block_size] != view_b[start : start + block_size]:
            return f"first differing block at offset {start}"
    return "identical"


def dirty_blocks(settings: Settings, volume: str) -> BitMap:
    """The tracker's durable dirty bitmap, read from its file (empty when there is none)."""
    path = settings.volume_state_dir("trackers", volume) / "dirty.bitmap"
    raw = path.read_bytes() if path.exists() else b""
    return BitMap.deserialize(raw) if raw else BitMap()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(interval)
