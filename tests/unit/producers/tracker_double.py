"""An in-memory WriteTracker that records what a front end submits (unit tests only).

It checks the contract it is given (aligned, in range, intent before the image changes) so a
front end that breaks it fails the test. Kafka is not involved: futures complete at once, or
fail on demand to simulate a crash mid-pass.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path


class SimulatedCrash(RuntimeError):
    """Raised by the double when told to fail."""


@dataclass(frozen=True)
class Submitted:
    op: str
    offset: int
    length: int
    data: bytes | None = None


class RecordingTracker:
    def __init__(
        self,
        volume_size: int,
        block_size: int = 4096,
        name: str = "vol",
        *,
        fail_at: int | None = None,
        fail_in_future: bool = False,
        image: Path | None = None,
    ):
        self._size = volume_size
        self._block = block_size
        self._name = name
        self._fail_at = fail_at
        self._fail_in_future = fail_in_future
        self._image = image
        self.events: list[Submitted] = []
        self.failed: list[Submitted] = []
        self.intents: list[tuple[int, int]] = []
        self.markers: list[tuple[str, str | None]] = []
        self.calls = 0

    @property
    def volume_name(self) -> str:
        return self._name

    @property
    def volume_size(self) -> int:
        return self._size

    @property
    def block_size(self) -> int:
        return self._block

    @property
    def acknowledges_locally(self) -> bool:
        """The double's futures may be failed or delayed by a test: never take the inline path."""
        return False

    def intent(self, offset: int, length: int) -> None:
        self._check(offset, length)
        self.intents.append((offset, length))

    def submit_write(self, offset: int, data: bytes) -> Future[None]:
        self._check(offset, len(data))
        if self._image is not None:
            assert (offset, len(data)) in self.intents, "image written without an intent"
            with self._image.open("rb") as handle:
                handle.seek(offset)
                assert handle.read(len(data)) == data, "submitted before the image was written"
        return self._record(Submitted("WRITE", offset, len(data), bytes(data)))

    def submit_zero(self, offset: int, length: int) -> Future[None]:
        self._check(offset, length)
        return self._record(Submitted("ZERO", offset, length))

    def submit_trim(self, offset: int, length: int) -> Future[None]:
        self._check(offset, length)
        return self._record(Submitted("TRIM", offset, length))

    def submit_marker(self, kind: str, label: str | None = None) -> Future[None]:
        self.markers.append((kind, label))
        return _done()

    def flush(self, timeout: float = 30.0) -> None:
        return None

    def written_blocks(self) -> set[int]:
        return {b for e in self.events if e.op == "WRITE" for b in self._blocks(e)}

    def zeroed_blocks(self) -> set[int]:
        return {b for e in self.events if e.op == "ZERO" for b in self._blocks(e)}

    def apply_to(self, mirror: bytearray) -> None:
        """Apply the recorded events to a model of the mirror."""
        for event in self.events:
            payload = event.data if event.data is not None else bytes(event.length)  # ZERO and TRIM carry none
            mirror[event.offset : event.offset + event.length] = payload

    def _blocks(self, event: Submitted) -> range:
        return range(event.offset // self._block, (event.offset + event.length) // self._block)

    def _record(self, event: Submitted) -> Future[None]:
        self.calls += 1
        if self._fail_at is not None and self.calls >= self._fail_at:
            self.failed.append(event)
            if not self._fail_in_future:
                raise SimulatedCrash(f"tracker double fails at submit {self.calls}")
            future: Future[None] = Future()
            future.set_exception(SimulatedCrash(f"Kafka refused submit {self.calls}"))
            return future
        self.events.append(event)
        return _done()

    def _check(self, offset: int, length: int) -> None:
        assert length > 0, f"empty extent at {offset}"
        assert offset % self._block == 0 and length % self._block == 0, f"unaligned {offset}+{length}"
        assert offset + length <= self._size, f"{offset}+{length} beyond the volume end {self._size}"


def _done() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future
