"""The change-set stream of one volume, applied to its mirror: no Kafka here, only the contract.

`handle` takes decoded events in partition order. It skips what the mirror already holds, buffers
the open change set and applies it at its seal. A bad set raises InvalidChangeSetError once (the
caller dead-letters it); later sets wait until a whole copy of the bad one arrives (a processor
re-emission), because applying them would skip its changes.

Gaps stop the mirror where they are. A set newer than the next one, with the next never seen,
means the sets between are gone; a ResyncRequest means the journal lost writes (a seq gap;
`seen_seq = -1`: the whole volume is in doubt). Either way the mirror is recorded RESYNC_NEEDED at
its last applied set and ChangeSetGapError is raised: nothing past the gap is applied, no later
recovery point is offered, until `tidemark resync` repairs the mirror (it records the offset below
which ResyncRequests were repaired, `resynced_below`).

One primary: a set sealed under an older primary generation than the mirror's (`Progress.generation`:
that of the last set it applied, or the one a failover, failback or rejoin set) was written by a
fenced primary. It is refused with FencedChangeSetError (the caller dead-letters it), unapplied and
unrecorded, and the mirror goes on: a set of the current generation with the same id is applied,
and if none comes, the next one's id shows the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from .apply.changeset_buffer import ChangeSetBuffer
from .exceptions import ChangeSetGapError, FencedChangeSetError, InvalidChangeSetError
from .mirror import Mirror
from .storage.progress import ERROR, RESYNC_NEEDED


@dataclass(frozen=True)
class Applied:
    changeset_id: int
    rp_id: int | None
    bytes: int
    sealed_at: int


class StreamApplier:
    def __init__(self, mirror: Mirror, volume: str, spool_dir: Path) -> None:
        self.mirror = mirror
        self.volume = volume
        progress = mirror.progress
        self.buffer = ChangeSetBuffer(volume, progress.volume_size, progress.block_size, spool_dir)
        self.blocked_at: int | None = None  # the change set that failed; later ones wait for it

    @property
    def applied(self) -> int:
        return self.mirror.progress.changeset_id

    def handle(self, record_type: str, record: dict[str, Any], partition: int, offset: int) -> Applied | None:
        if record.get("volume") != self.volume:
            raise InvalidChangeSetError(
                f"{record_type} names volume {record.get('volume')!r} but is keyed {self.volume!r}"
            )
        if record_type == "Extent":
            if record["changeset_id"] > self.applied:
                self.buffer.add(record)
            return None
        if record_type == "ChangeSetSealed":
            return self._seal(record, partition, offset)
        if record_type == "ResyncRequest":
            self._resync_requested(record, partition, offset)
            return None
        raise InvalidChangeSetError(f"unexpected {record_type} event on the change-set topic")

    def _seal(self, record: dict[str, Any], partition: int, offset: int) -> Applied | None:
        cs_id = record["changeset_id"]
        if cs_id <= self.applied:
            return None
        if self.mirror.progress.state == RESYNC_NEEDED:
            raise ChangeSetGapError(f"change set {cs_id} not applied: {self.mirror.progress.message}")
        self._require_current_generation(record)
        if self.blocked_at is not None and cs_id != self.blocked_at:
            return None
        if cs_id != self.applied + 1:
            self._gap(cs_id)
        try:
            sealed = self.buffer.seal(record)
        except InvalidChangeSetError as exc:
            self.buffer.reset()
            self.blocked_at = self.applied + 1
            self._error(str(exc))
            raise
        written = self.mirror.apply(sealed, partition, offset + 1)
        self.buffer.reset()
        self.blocked_at = None
        return Applied(cs_id, sealed.rp_id, written, sealed.sealed_at)

    def _require_current_generation(self, record: dict[str, Any]) -> None:
        generation, current = record.get("generation", 0), self.mirror.progress.generation
        if generation >= current:
            return
        self.buffer.reset()
        raise FencedChangeSetError(
            f"change set {record['changeset_id']} of volume {self.volume!r} was sealed under primary "
            f"generation {generation}, but the mirror already follows generation {current}: a failover "
            f"fenced its writer, so it is not applied (the mirror stays at change set {self.applied}). "
            "Stop whatever still writes as the old primary; if sets of the current generation stop "
            "coming, the mirror reports the gap"
        )

    def _gap(self, cs_id: int) -> None:
        """The sets between are gone (retention deleted them while the mirror was away): applying
        a later set on this base would silently corrupt the mirror, so it needs a resync."""
        message = (
            f"change set {cs_id} of volume {self.volume!r} arrived but the mirror applied only up to "
            f"{self.applied}: change sets {self.applied + 1}..{cs_id - 1} are missing from the topic"
        )
        self._stop_for_resync(message)

    def _error(self, message: str) -> None:
        state = self.mirror.progress
        state.state, state.message = ERROR, message

    def _resync_requested(self, record: dict[str, Any], partition: int, offset: int) -> None:
        """Stop at a ResyncRequest the mirror has not been resynced past."""
        state = self.mirror.progress
        if state.resynced_below is not None and state.partition == partition and offset < state.resynced_below:
            return
        lost = (
            "the whole volume is in doubt"
            if record["seen_seq"] < 0
            else f"expected seq {record['expected_seq']}, saw {record['seen_seq']}"
        )
        message = (
            f"the journal of volume {self.volume!r} has a gap after change set {self.applied} "
            f"(ResyncRequest at offset {offset}: {record['reason']}; {lost}); the mirror stopped there"
        )
        self._stop_for_resync(message)

    def _stop_for_resync(self, message: str) -> NoReturn:
        """Drop the buffered sets, record RESYNC_NEEDED with `message`, and stop this volume's apply."""
        self.buffer.reset()
        self.mirror.mark_resync_needed(message)
        raise ChangeSetGapError(message)

    def close(self) -> None:
        self.buffer.close()
