"""The client side of the fault suite: a real trace replayed by qemu-io, and what it saw acknowledged.

- `trace_commands`: the write records of a trace sample, mapped into the volume the way the
  replayer maps them (`tidemark.producers.replay.map_write`), each a qemu-io `write -P <byte>`
  whose byte pattern comes from a running counter, so every pass over the trace writes new bytes.
- `AckModel`: per block, the byte an acknowledged write left there, plus the bytes of writes that
  were in flight (sent, never acknowledged) when a fault hit: such a block may hold any of them.
- `QemuWriter`: a thread running qemu-io in chunks of commands against the tracker's current
  `nbd://` address; qemu-io prints one result line per command, so after a fault it is known
  exactly which commands were acknowledged.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tidemark.producers.replay import map_write
from tidemark.producers.traces import read_trace

QEMU_IO_TIMEOUT_S = 120.0
_WROTE = re.compile(r"^wrote (\d+)/(\d+) bytes at offset (\d+)$")
_FAILED = re.compile(r"^write failed: ")


@dataclass(frozen=True)
class WriteCommand:
    number: int
    """Position in the replay (0, 1, ...): identifies the write in the model and in reports."""
    offset: int
    length: int
    pattern: int
    """The byte `write -P` fills the range with (1..255; 0 is what an untouched block holds)."""

    @property
    def qemu_io(self) -> str:
        return f"write -P {self.pattern} {self.offset} {self.length}"

    def blocks(self, block_size: int) -> range:
        return range(self.offset // block_size, (self.offset + self.length) // block_size)


def trace_commands(trace: Path, fmt: str, volume_size: int, block_size: int) -> Iterator[WriteCommand]:
    """The trace's writes, mapped into the volume, repeated without end (new bytes each pass)."""
    numbers = itertools.count()
    while True:
        for record in read_trace(trace, fmt):
            if not record.is_write or record.size == 0:
                continue
            extent, _clipped = map_write(record.offset, record.size, volume_size, block_size)
            number = next(numbers)
            yield WriteCommand(number, extent.offset, extent.length, 1 + number % 255)


@dataclass
class BlockFacts:
    """What a block may hold: the last acknowledged write's byte, or one of the unsettled ones."""

    acknowledged: int = 0
    owner: int | None = None
    """The acknowledged write that put `acknowledged` there (None: never written)."""
    unsettled: set[int] = field(default_factory=set)

    def allowed(self) -> set[int]:
        return {self.acknowledged, *self.unsettled}


class AckModel:
    """The volume as the client knows it: acknowledged bytes per block, and in-flight doubts."""

    def __init__(self, volume_size: int, block_size: int) -> None:
        self.block_size = block_size
        self.blocks = [BlockFacts() for _ in range(volume_size // block_size)]
        self.acknowledged = 0
        self.unacknowledged = 0

    @classmethod
    def of_image(cls, image: bytes, block_size: int) -> AckModel:
        """A model whose every block is acknowledged as `image` holds it (each block one byte over)."""
        model = cls(len(image), block_size)
        for block, facts in enumerate(model.blocks):
            chunk = image[block * block_size : (block + 1) * block_size]
            assert chunk.count(chunk[0]) == block_size, f"block {block} is not filled with one byte"
            facts.acknowledged = chunk[0]
        return model

    def acknowledge(self, command: WriteCommand) -> None:
        self.acknowledged += 1
        for block in command.blocks(self.block_size):
            facts = self.blocks[block]
            facts.acknowledged, facts.owner = command.pattern, command.number
            facts.unsettled.clear()

    def in_doubt(self, command: WriteCommand) -> None:
        """Sent but not acknowledged: it may or may not have reached the image."""
        self.unacknowledged += 1
        for block in command.blocks(self.block_size):
            self.blocks[block].unsettled.add(command.pattern)

    def lost_writes(self, image: bytes, exempt: Callable[[int], bool]) -> set[int]:
        """Acknowledged writes `image` does not hold where they are still the latest word.

        A block whose content is one of its allowed bytes is fine; otherwise the write that owns
        it was lost, unless `exempt(block)` (the block is in a pending resync set). A block never
        acknowledged but holding something unexpected counts as write -1 (corruption).
        """
        lost: set[int] = set()
        size = self.block_size
        for block, facts in enumerate(self.blocks):
            chunk = image[block * size : (block + 1) * size]
            if chunk.count(chunk[0]) == size and chunk[0] in facts.allowed():
                continue
            if not exempt(block):
                lost.add(facts.owner if facts.owner is not None else -1)
        return lost

    def settle(self, image: bytes) -> None:
        """After a check passed: each doubtful block holds what the (quiet) source holds now."""
        size = self.block_size
        for block, facts in enumerate(self.blocks):
            if facts.unsettled:
                facts.acknowledged = image[block * size]
                facts.unsettled.clear()


def run_chunk(uri: str, commands: list[WriteCommand]) -> list[bool]:
    """One qemu-io process for `commands`; per command (in order) whether qemu-io printed `wrote`."""
    args = ["qemu-io", "-f", "raw", uri]
    for command in commands:
        args += ["-c", command.qemu_io]
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=QEMU_IO_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False
        )
        lines = done.stdout.splitlines()
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        lines = (out.decode(errors="replace") if isinstance(out, bytes) else out).splitlines()
    results = [line for line in lines if _WROTE.match(line) or _FAILED.match(line)]
    acknowledged: list[bool] = []
    for index, command in enumerate(commands):
        wrote = _WROTE.match(results[index]) if index < len(results) else None
        acknowledged.append(wrote is not None and int(wrote[3]) == command.offset and int(wrote[1]) == command.length)
    return acknowledged


class QemuWriter:
    """Replays `commands` through qemu-io in chunks until stopped; `pause()` waits for a chunk end."""

    def __init__(
        self, commands: Iterator[WriteCommand], uri: Callable[[], str | None], model: AckModel, chunk: int
    ) -> None:
        self._commands = commands
        self._uri = uri
        self._model = model
        self._chunk = chunk
        self._run = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="qemu-writer", daemon=True)
        self.chunks = 0
        self.failed_chunks = 0

    def start(self) -> None:
        self._run.set()
        self._thread.start()

    def resume(self) -> None:
        self._run.set()

    def pause(self, timeout: float = QEMU_IO_TIMEOUT_S + 10) -> None:
        """Stop after the current chunk; returns when no qemu-io runs."""
        self._run.clear()
        if not self._idle.wait(timeout):
            raise AssertionError(f"qemu-io still running after {timeout} s")

    def close(self) -> None:
        self._stop.set()
        self._run.set()
        self._thread.join(QEMU_IO_TIMEOUT_S + 10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._run.wait()
            if self._stop.is_set():
                return
            uri = self._uri()
            if uri is None:  # the tracker is down: a client would retry
                self._stop.wait(0.1)
                continue
            self._idle.clear()
            try:
                if not self._run.is_set():
                    continue
                pending = [next(self._commands) for _ in range(self._chunk)]
                # In command order: a later acknowledged write settles an earlier doubtful one.
                acknowledged = run_chunk(uri, pending)
                for command, acked in zip(pending, acknowledged, strict=True):
                    if acked:
                        self._model.acknowledge(command)
                    else:
                        self._model.in_doubt(command)
                self.chunks += 1
                self.failed_chunks += not all(acknowledged)
            finally:
                self._idle.set()
