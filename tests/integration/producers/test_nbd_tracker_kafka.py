"""Issue #3 through the real broker: `tidemark track nbd` in its own process, real NBD clients
(qemu-io, nbdcopy), and the writes topic read back and checked with the codec.

- 200 random writes (unaligned ones, write-zeroes, discards, flushes) appear in order, gap-free,
  each event tiling its command's block-aligned range with the content the image had right after
  that command; the image equals a model file that qemu-io wrote with the same commands, and a
  mirror rebuilt from the events equals the image.
- nbdcopy of a 256 MiB random file gives an identical image, and the events rebuild it.
- `kill -9` of the tracker during writes, then a restart: a new epoch, no reused seq, every write
  qemu-io saw acknowledged is on the topic, and after the republish of the activity log's regions
  the rebuilt mirror equals the image.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tidemark.core.blocks import align_out

from ...conftest import CliRunner, TidemarkTest
from .nbd_harness import (
    TrackerProcess,
    block_writes,
    check_events,
    check_seqs_increase,
    dirty_blocks,
    first_difference,
    line_buffered,
    markers,
    payload,
    qemu_io,
    read_journal,
    rebuild,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.nbd]

KIB = 1024
MIB = 1024 * KIB
BS = 4096
VOLUME = "disk0"
REPUBLISH_LIMIT_S = 60.0


def _image(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


# -- 200 random writes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One qemu-io command that changes the disk: write with a pattern byte, write-zeroes or discard."""

    kind: str  # write, zero, discard
    offset: int
    length: int
    pattern: int = 0

    def qemu(self) -> str:
        if self.kind == "write":
            return f"write -P {self.pattern} {self.offset} {self.length}"
        if self.kind == "zero":
            return f"write -z {self.offset} {self.length}"
        return f"discard {self.offset} {self.length}"

    def apply(self, model: bytearray) -> None:
        model[self.offset : self.offset + self.length] = bytes([self.pattern]) * self.length


def _random_commands(rng: random.Random, count: int, size: int) -> list[Command]:
    """Mostly writes of unaligned and aligned extents (some larger than one event), some zeroes
    and discards. Offsets stay in the first half of the disk so that commands overlap often.
    Discards are block-aligned: qemu may drop the unaligned edges of a discard (it is advisory)."""
    commands = []
    span = size // 2
    for _ in range(count):
        roll = rng.random()
        if roll < 0.8:
            length = rng.choice([rng.randint(1, 9000), rng.randint(1, 700 * KIB), rng.randint(1, 64) * BS])
            offset = rng.choice([rng.randrange(span - length), rng.randrange(span // BS) * BS])
            commands.append(Command("write", min(offset, span - length), length, rng.randint(1, 255)))
        elif roll < 0.92:
            length = rng.randint(1, 300 * KIB)
            commands.append(Command("zero", rng.randrange(span - length), length))
        else:
            blocks = rng.randint(1, 96)
            commands.append(Command("discard", rng.randrange(span // BS - blocks) * BS, blocks * BS))
    return commands


# Event ops a command may produce: partial edge blocks of zeroes and discards are read back as WRITE.
_OPS = {"write": {"WRITE"}, "zero": {"ZERO", "WRITE"}, "discard": {"TRIM", "WRITE"}}


def _check_command_events(commands: list[Command], writes: list[dict[str, Any]], size: int) -> None:
    """qemu-io runs its commands one after the other and the tracker acknowledges a command only
    once its events are on Kafka, so each command's events follow the previous command's. They
    tile the command's block-aligned range in ascending order and carry the image content right
    after the command (unaligned edges are read back from the image)."""
    model = bytearray(size)
    position = 0
    for index, command in enumerate(commands):
        command.apply(model)
        span = align_out(command.offset, command.length, BS)
        covered = span.offset
        while covered < span.end:
            assert position < len(writes), f"command {index} ({command.qemu()}): events missing from {covered}"
            write = writes[position]
            where = f"command {index} ({command.qemu()}), event seq {write['seq']}"
            assert write["offset"] == covered, f"{where}: starts at {write['offset']}, expected {covered}"
            end = write["offset"] + write["length"]
            assert end <= span.end, f"{where}: runs past {span.end}"
            whole = command.offset <= write["offset"] and end <= command.offset + command.length
            assert write["op"] in _OPS[command.kind] and (write["op"] == "WRITE" or whole), f"{where}: op {write['op']}"
            assert payload(write) == model[write["offset"] : end], f"{where}: content"
            covered = end
            position += 1
    assert position == len(writes), f"{len(writes) - position} events beyond the commands' ranges"


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_random_qemu_io_writes_reach_the_topic_in_order(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, trackers: list[TrackerProcess], compression: str
) -> None:
    size = 16 * MIB
    rng = random.Random(3 if compression == "none" else 4)
    commands = _random_commands(rng, 200, size)
    script: list[str] = []
    for index, command in enumerate(commands):
        script.append(command.qemu())
        if index % 40 == 39:
            script.append("flush")
    cli("volume", "add", VOLUME, "--size", str(size))
    image = _image(tmp_path / "disk.img", size)
    tracker = TrackerProcess(tm.env, VOLUME, image, tmp_path / "logs", 0, "--compression", compression)
    trackers.append(tracker)

    qemu_io(tracker.uri, script)
    model_file = _image(tmp_path / "model.img", size)
    qemu_io(str(model_file), script)
    assert tracker.stop() == 0, tracker.output()

    written = image.read_bytes()
    assert written == model_file.read_bytes(), first_difference(written, model_file.read_bytes(), BS)
    events = read_journal(tm.clients, tm.topics.writes, VOLUME)
    writes = block_writes(events)
    check_events(writes, size, BS, tm.settings.extent_bytes)
    check_seqs_increase(writes, gap_free=True)
    assert writes[0]["seq"] == 0 and {w["epoch"] for w in writes} == {1}
    assert events[0].type == "Marker" and events[0].record["kind"] == "EPOCH_START"
    if compression != "none":
        assert any(w["compression"] == compression.upper() for w in writes), "no event was compressed"
    _check_command_events(commands, writes, size)
    flushes = markers(events, "FLUSH")
    assert len(flushes) >= len(commands) // 40, "a client FLUSH did not become a Marker"
    last_seq = -1
    for event in events:  # a FLUSH marker sits after every write acknowledged before it
        if event.type == "BlockWrite":
            last_seq = event.record["seq"]
        elif event.record["kind"] == "FLUSH":
            assert event.record["after_seq"] == last_seq
    mirror = rebuild(writes, size)
    assert mirror == written, first_difference(mirror, written, BS)


# -- nbdcopy ----------------------------------------------------------------------------------


def test_nbdcopy_of_a_256_mib_file_gives_an_identical_image(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, trackers: list[TrackerProcess]
) -> None:
    size = 256 * MIB
    source = tmp_path / "source.img"
    with source.open("wb") as handle:
        rng = random.Random(256)
        for _ in range(size // MIB):
            handle.write(rng.randbytes(MIB))
    cli("volume", "add", VOLUME, "--size", str(size))
    image = _image(tmp_path / "disk.img", size)
    tracker = TrackerProcess(tm.env, VOLUME, image, tmp_path / "logs")
    trackers.append(tracker)

    result = subprocess.run(
        ["nbdcopy", str(source), tracker.uri],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, f"nbdcopy failed:\n{result.stdout}\n{result.stderr}\n{tracker.output()}"
    assert tracker.stop() == 0, tracker.output()

    expected = source.read_bytes()
    written = image.read_bytes()
    assert written == expected, first_difference(written, expected, BS)
    writes = block_writes(read_journal(tm.clients, tm.topics.writes, VOLUME, timeout=120))
    check_events(writes, size, BS, tm.settings.extent_bytes)
    check_seqs_increase(writes, gap_free=True)
    del written
    mirror = rebuild(writes, size)
    assert mirror == expected, first_difference(mirror, expected, BS)


# -- kill -9 during writes --------------------------------------------------------------------

WRITE_STEP = 48 * KIB
WRITE_LENGTH = 64 * KIB
_WROTE = re.compile(r"^wrote (\d+)/(\d+) bytes at offset (\d+)$", re.MULTILINE)


def _sequential_writes(count: int) -> list[Command]:
    """Write i starts 512 bytes into its 48 KiB step and overlaps the next one by 16 KiB; each has
    a pattern byte different from its neighbours', so its surviving part identifies it."""
    return [Command("write", i * WRITE_STEP + 512, WRITE_LENGTH, i % 250 + 1) for i in range(count)]


def _acknowledged(output: str, commands: list[Command]) -> list[int]:
    """Indexes of the commands qemu-io reported as written (it goes on after a failure, so the
    commands after the kill are there too, each with an error instead of `wrote`)."""
    by_offset = {c.offset: i for i, c in enumerate(commands)}
    done = []
    for match in _WROTE.finditer(output):
        written, requested, offset = (int(g) for g in match.groups())
        assert written == requested == WRITE_LENGTH
        done.append(by_offset[offset])
    return done


def _check_acknowledged_on_topic(
    writes: list[dict[str, Any]], size: int, commands: list[Command], acknowledged: list[int]
) -> None:
    mirror = rebuild(writes, size)
    for index in acknowledged:  # each acknowledged write's part that no later write overlaps
        command = commands[index]
        end = command.offset + (WRITE_STEP if index + 1 < len(commands) else WRITE_LENGTH)
        assert mirror[command.offset : end] == bytes([command.pattern]) * (end - command.offset), (
            f"write {index} ({command.qemu()}) was acknowledged but is not on the topic"
        )


@pytest.mark.parametrize("ack", ["kafka", "local"])
def test_kill_9_during_writes_then_restart_loses_no_acknowledged_write(
    tm: TidemarkTest, cli: CliRunner, tmp_path: Path, trackers: list[TrackerProcess], ack: str
) -> None:
    """`--ack kafka`: every acknowledged write is on the topic at the kill. `--ack local`: every
    acknowledged write is on the topic once the restarted tracker republished its activity log."""
    size = 64 * MIB
    commands = _sequential_writes((size - WRITE_LENGTH) // WRITE_STEP)
    cli("volume", "add", VOLUME, "--size", str(size))
    image = _image(tmp_path / "disk.img", size)
    first = TrackerProcess(tm.env, VOLUME, image, tmp_path / "logs", 0, "--ack", ack)
    trackers.append(first)
    client_log = tmp_path / "qemu-io.out"
    args = ["qemu-io", "-f", "raw", first.uri]
    for command in commands:
        args += ["-c", command.qemu()]
    with client_log.open("wb") as out:
        client = subprocess.Popen(line_buffered(args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(_WROTE.findall(client_log.read_text())) >= 100, 120, "100 acknowledged writes")
        first.kill()
        client.wait(120)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    acknowledged = _acknowledged(client_log.read_text(), commands)
    assert 100 <= len(acknowledged) < len(commands), "the kill did not land during the writes"
    assert acknowledged == list(range(len(acknowledged))), "qemu-io acknowledged writes out of order"

    first_epoch = block_writes(read_journal(tm.clients, tm.topics.writes, VOLUME))
    check_events(first_epoch, size, BS, tm.settings.extent_bytes)
    if ack == "kafka":
        _check_acknowledged_on_topic(first_epoch, size, commands, acknowledged)

    second = TrackerProcess(tm.env, VOLUME, image, tmp_path / "logs", first.port, "--ack", ack)
    trackers.append(second)
    wait_until(lambda: not dirty_blocks(tm.settings, VOLUME), REPUBLISH_LIMIT_S, "republish of in-flight regions")
    assert second.stop() == 0, second.output()
    republished = block_writes(read_journal(tm.clients, tm.topics.writes, VOLUME))
    _check_acknowledged_on_topic(republished, size, commands, acknowledged)

    third = TrackerProcess(tm.env, VOLUME, image, tmp_path / "logs", first.port, "--ack", ack)
    trackers.append(third)
    more = _sequential_writes(3)
    qemu_io(third.uri, [Command("write", c.offset, c.length, 255 - i).qemu() for i, c in enumerate(more)])
    assert third.stop() == 0, third.output()

    events = read_journal(tm.clients, tm.topics.writes, VOLUME)
    writes = block_writes(events)
    check_events(writes, size, BS, tm.settings.extent_bytes)
    check_seqs_increase(writes, gap_free=False)
    epochs = [m["epoch"] for m in markers(events, "EPOCH_START")]
    # With local acknowledgement the first tracker may be killed before it reached Kafka at all
    # (its writes were acknowledged from the image): then only the later two announce an epoch.
    expected = (3,) if ack == "kafka" else (2, 3)
    assert len(epochs) in expected and epochs == sorted(set(epochs)), f"EPOCH_START epochs {epochs}"
    restarted = [w for w in writes if w["epoch"] == epochs[1]]
    assert restarted, "the restarted tracker republished no in-flight region"
    if first_epoch:
        assert restarted[0]["seq"] > first_epoch[-1]["seq"]
    assert not dirty_blocks(tm.settings, VOLUME)
    final = image.read_bytes()
    rebuilt = rebuild(writes, size)
    assert rebuilt == final, first_difference(rebuilt, final, BS)
    for index in acknowledged[len(more) + 1 : -1]:  # the image kept them too (the extra writes overlap the first)
        command = commands[index]
        assert final[command.offset : command.offset + WRITE_STEP] == bytes([command.pattern]) * WRITE_STEP
    assert os.path.getsize(image) == size
