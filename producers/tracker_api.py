"""The interface every tracker (NBD, scan, trace replay) publishes through.

The implementation is `tidemark.producers.tracker.Tracker`. Contract:

- Offsets and lengths are block-aligned to the volume's block size. A front end that sees an
  unaligned write applies it to its image, then reads back the covering aligned range
  (`tidemark.core.blocks.align_out`) and submits that.
- `intent(offset, length)` is called *before* the source image is modified: it makes the range
  durable in the tracker's activity log, so a crash between the image write and Kafka's
  confirmation is repaired on restart (the range is republished from the image).
  It costs no I/O when the range's regions are already in the log (the steady state).
- `submit_*` return a future; only once it is done may the front end acknowledge the write to
  its client. With local acknowledgement it is already done when `submit_*` returns (check
  `.done()` and skip waiting); with Kafka acknowledgement it completes when Kafka confirmed the
  events, or when Kafka is unreachable and the blocks are in the dirty bitmap (published later).
  FUA and FLUSH durability of the image is the front end's (it owns the image).
- `intent_run` and `submit_writes` do the same for a run of writes at once (the NBD server's C
  path), in that order: every intent of the run, then the image, then the submits. The front end
  then calls `ship_queued` on its own thread once its replies are out: the run ships there when
  nothing else is shipping, with no other thread woken.
- `submit_marker` queues the marker behind every write submitted before it; it is never dropped
  (while Kafka is unreachable it is published after the dirty blocks, in order).
- Calls are thread-safe; `submit_*` never wait for Kafka in local mode.
- A tracker that can be fenced (one primary at a time) also implements `Fenceable`: once its
  `fenced` names a reason, `submit_write|zero|trim` raise and a front end refuses writes itself
  (the NBD export turns read-only: EPERM); flush and reads go on.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol, runtime_checkable


class WriteTracker(Protocol):
    @property
    def volume_name(self) -> str: ...

    @property
    def volume_size(self) -> int: ...

    @property
    def block_size(self) -> int: ...

    @property
    def acknowledges_locally(self) -> bool:
        """True when `submit_*` always return done futures (local acknowledgement)."""
        ...

    def intent(self, offset: int, length: int) -> None: ...

    def submit_write(self, offset: int, data: bytes) -> Future[None]: ...

    def intent_run(self, ranges: list[tuple[int, int]]) -> None:
        """`intent` of several ranges (offset, length) at once."""
        ...

    def submit_writes(self, writes: list[tuple[int, bytes]]) -> int:
        """`submit_write` of several writes (offset, data) in order, with local acknowledgement
        only: how many were taken, a prefix (it stops at the first refused write and raises only
        when none was taken)."""
        ...

    def ship_queued(self) -> None:
        """Publish what `submit_writes` queued, on the caller's thread where that needs no wait."""
        ...

    def submit_zero(self, offset: int, length: int) -> Future[None]: ...

    def submit_trim(self, offset: int, length: int) -> Future[None]: ...

    def submit_marker(self, kind: str, label: str | None = None) -> Future[None]:
        """kind: REQUESTED or FLUSH (Marker schema)."""
        ...

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every write submitted so far has its acknowledgement mode's guarantee:
        at once with local acknowledgement, confirmed by Kafka (or dirty) with Kafka's."""
        ...


@runtime_checkable
class Fenceable(Protocol):
    @property
    def fenced(self) -> str | None:
        """Why the tracker refuses writes (a newer primary generation, another site), else None."""
        ...
