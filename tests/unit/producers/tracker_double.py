"""An in-memory WriteTracker that records what a front end submits (unit tests only).

One double for every front end (the NBD tracking export, scan, replay). It is not a Kafka mock:
the Kafka path is tested with the real tracker elsewhere. It records every call (`calls`, in
order), keeps a mirror rebuilt from the submitted events (`mirror`), and checks the contract a
front end must keep: extents aligned, non-empty and inside the volume; with `intents_required`
(NBD) each submit covered by an earlier intent; with `image` (replay) each write's exact intent
declared and the image already holding its bytes. A broken contract is recorded in `violations`
and raised as AssertionError at the front end. Thread-safe: the NBD server calls it from its
thread pool.

Futures complete at once unless the test asks otherwise: `fail_at=N` crashes at the Nth submit
(raising SimulatedCrash, or failing the future with `fail_in_future`; such submits land in
`failed`, not in `calls`); `ship_queued_at` records when the front end asked for a run to be
shipped; `fail_submits` fails every future as Kafka would; `gated` holds them
until `open_gate()`; `hold_first_submit` blocks the first submit until `release_first_submit`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from tidemark.core.blocks import Extent

SUBMITS = ("WRITE", "ZERO", "TRIM")


class SimulatedCrash(RuntimeError):
    """Raised by the double when told to fail."""


@dataclass(frozen=True)
class Call:
    op: str  # INTENT, WRITE, ZERO, TRIM, MARKER, FLUSH
    offset: int = 0
    length: int = 0
    data: bytes | None = None
    kind: str | None = None
    label: str | None = None


class RecordingTracker:
    def __init__(
        self,
        size: int,
        block: int = 4096,
        name: str = "vol",
        *,
        image: Path | None = None,
        intents_required: bool = False,
        fail_at: int | None = None,
        fail_in_future: bool = False,
        fail_submits: bool = False,
        gated: bool = False,
        hold_first_submit: bool = False,
    ) -> None:
        self.size = size
        self.block = block
        self.name = name
        self.image = image
        self.intents_required = intents_required or image is not None
        self.fail_at = fail_at
        self.fail_in_future = fail_in_future
        self.fail_submits = fail_submits
        self.gated = gated
        self.hold_first_submit = hold_first_submit
        self.first_submit_held = threading.Event()
        self.release_first_submit = threading.Event()
        self.submitted = threading.Event()
        self.calls: list[Call] = []
        self.failed: list[Call] = []
        self.violations: list[str] = []
        self.mirror = bytearray(size)
        self._lock = threading.Lock()
        self._open_intents: list[Extent] = []
        self._held: list[Future[None]] = []
        self._submits = 0
        self.ship_queued_at: list[int] = []  # len(calls) at each `ship_queued`

    @property
    def volume_name(self) -> str:
        return self.name

    @property
    def volume_size(self) -> int:
        return self.size

    @property
    def block_size(self) -> int:
        return self.block

    @property
    def acknowledges_locally(self) -> bool:
        """Done futures on return unless the test fails, gates or holds submits."""
        return not (self.fail_submits or self.gated or self.hold_first_submit or self.fail_at is not None)

    def intent(self, offset: int, length: int) -> None:
        with self._lock:
            self._check("INTENT", offset, length)
            self._open_intents.append(Extent(offset, length))
            self.calls.append(Call("INTENT", offset, length))

    def submit_write(self, offset: int, data: bytes) -> Future[None]:
        return self._submit(Call("WRITE", offset, len(data), bytes(data)))

    def intent_run(self, ranges: list[tuple[int, int]]) -> None:
        for offset, length in ranges:
            self.intent(offset, length)

    def submit_writes(self, writes: list[tuple[int, bytes]]) -> int:
        """`submit_write` of each in order; a prefix is taken (raises only when none was)."""
        taken = 0
        for offset, data in writes:
            try:
                self.submit_write(offset, data).result()
            except Exception:
                if taken == 0:
                    raise
                break
            taken += 1
        return taken

    def ship_queued(self) -> None:
        with self._lock:
            self.ship_queued_at.append(len(self.calls))

    def submit_zero(self, offset: int, length: int) -> Future[None]:
        return self._submit(Call("ZERO", offset, length))

    def submit_trim(self, offset: int, length: int) -> Future[None]:
        return self._submit(Call("TRIM", offset, length))

    def submit_marker(self, kind: str, label: str | None = None) -> Future[None]:
        with self._lock:
            self.calls.append(Call("MARKER", kind=kind, label=label))
        return self._future()

    def flush(self, timeout: float = 30.0) -> None:
        with self._lock:
            self.calls.append(Call("FLUSH"))

    def open_gate(self) -> None:
        """Confirm every future held back so far, and stop holding new ones."""
        with self._lock:
            self.gated = False
            held, self._held = self._held, []
        for future in held:
            future.set_result(None)

    def ops(self, *names: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.op in names]

    @property
    def events(self) -> list[Call]:
        """The submits recorded (WRITE, ZERO, TRIM), in order."""
        return self.ops(*SUBMITS)

    @property
    def intents(self) -> list[Extent]:
        return [Extent(call.offset, call.length) for call in self.ops("INTENT")]

    def written_blocks(self) -> set[int]:
        return {b for e in self.ops("WRITE") for b in self._blocks(e)}

    def zeroed_blocks(self) -> set[int]:
        return {b for e in self.ops("ZERO") for b in self._blocks(e)}

    def apply_to(self, mirror: bytearray) -> None:
        """Apply the recorded submits to another model of the mirror (e.g. after a crash and a retry)."""
        for event in self.events:
            mirror[event.offset : event.offset + event.length] = event.data or bytes(event.length)

    def _blocks(self, call: Call) -> range:
        return range(call.offset // self.block, (call.offset + call.length) // self.block)

    def _submit(self, call: Call) -> Future[None]:
        if self.hold_first_submit and not self.first_submit_held.is_set():
            self.first_submit_held.set()
            self.release_first_submit.wait(30)
        with self._lock:
            self._check(call.op, call.offset, call.length)
            self._check_intent(call)
            self._submits += 1
            if self.fail_at is not None and self._submits >= self.fail_at:
                self.failed.append(call)
                return self._crash()
            self.calls.append(call)
            self.mirror[call.offset : call.offset + call.length] = call.data or bytes(call.length)
        self.submitted.set()
        if self.fail_submits:
            failed: Future[None] = Future()
            failed.set_exception(RuntimeError("simulated Kafka failure"))
            return failed
        return self._future()

    def _crash(self) -> Future[None]:
        if not self.fail_in_future:
            raise SimulatedCrash(f"tracker double fails at submit {self._submits}")
        future: Future[None] = Future()
        future.set_exception(SimulatedCrash(f"Kafka refused submit {self._submits}"))
        return future

    def _future(self) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            if self.gated:
                self._held.append(future)
                return future
        future.set_result(None)
        return future

    def _check(self, what: str, offset: int, length: int) -> None:
        if length <= 0 or offset % self.block or length % self.block or offset + length > self.size:
            self._violation(f"{what} {offset}+{length} is empty, unaligned or past the end {self.size}")

    def _check_intent(self, call: Call) -> None:
        if not self.intents_required:
            return
        end = call.offset + call.length
        if self.image is not None and call.op == "WRITE":
            if Extent(call.offset, call.length) not in self._open_intents:
                self._violation(f"image written at {call.offset}+{call.length} without an intent")
            with self.image.open("rb") as handle:
                handle.seek(call.offset)
                if handle.read(call.length) != call.data:
                    self._violation(f"WRITE {call.offset}+{call.length} submitted before the image was written")
        elif not any(e.offset <= call.offset and end <= e.end for e in self._open_intents):
            self._violation(f"{call.op} {call.offset}+{call.length} without an earlier intent")

    def _violation(self, what: str) -> None:
        self.violations.append(what)
        raise AssertionError(what)
