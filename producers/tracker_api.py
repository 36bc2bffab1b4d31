"""The interface every tracker (NBD, scan, trace replay) publishes through.

The implementation is `tidemark.producers.tracker.Tracker`. Contract:

- Offsets and lengths are block-aligned to the volume's block size. A front end that sees an
  unaligned write applies it to its image, then reads back the covering aligned range
  (`tidemark.core.blocks.align_out`) and submits that.
- `intent(offset, length)` is called *before* the source image is modified: it makes the range
  durable in the tracker's activity log, so a crash between the image write and Kafka's
  confirmation is repaired on restart (the range is republished from the image).
- `submit_*` return a future that completes when Kafka confirmed the event, or when Kafka is
  unreachable and the blocks were recorded in the persistent dirty bitmap (published later).
  Only then may the front end acknowledge the write to its client.
- Calls are thread-safe; `submit_*` block (backpressure) while the producer queue is full.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol


class WriteTracker(Protocol):
    @property
    def volume_name(self) -> str: ...

    @property
    def volume_size(self) -> int: ...

    @property
    def block_size(self) -> int: ...

    def intent(self, offset: int, length: int) -> None: ...

    def submit_write(self, offset: int, data: bytes) -> Future[None]: ...

    def submit_zero(self, offset: int, length: int) -> Future[None]: ...

    def submit_trim(self, offset: int, length: int) -> Future[None]: ...

    def submit_marker(self, kind: str, label: str | None = None) -> Future[None]:
        """kind: REQUESTED or FLUSH (Marker schema)."""
        ...

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every submitted event is confirmed or recorded dirty."""
        ...
