"""The processor's logic per volume: fold writes, seal sub-intervals, cut recovery points.

Independent of Kafka. A write is folded by reference: the volume's `BlockRefs` records that its
blocks now point to the write's journal offset (its "ref"); no block data is kept. A seal reads
the referenced writes back through a `WriteSource` (a cache, else the journal itself) and emits
the Extents; the checksums of the sealed blocks stay in `store` (any mutable mapping of bytes:
the RocksDB partition store in production, a dict in tests) until the recovery point that needs
them is cut. "Now" is always the time of the event being handled (the Kafka message timestamp),
never the wall clock, so replaying the same log after a crash makes the same decisions and emits
the same change sets and recovery points.

Points are never starved: once a periodic point is due, the next seal of any cause (INTERVAL on
a tick or a write, SIZE on a write) is followed at once by the cut, which then ships nothing, and
the next tick seals whatever is open for it.
"""

from __future__ import annotations

import heapq
import logging
from array import array
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from tidemark.core.settings import DEFAULT_EXTENT_BYTES
from tidemark.schemas import records

from .admission import DROP, REFUSE, Verdict, admit_write, fenced, generation_of, remember, skip_to
from .block_refs import BlockRefs
from .exceptions import RefusedEventError
from .extents import ExtentSealer, changeset_digest
from .manifest import Batch, delete_checksums, merge_point, point_chunks, store_batches
from .volume_state import MetricsWindow, OpenSubInterval, VolumeState
from .write_source import WriteSource

log = logging.getLogger(__name__)

RP_KINDS = {"REQUESTED": "REQUESTED", "FLUSH": "FLUSH", "BARRIER": "BARRIER"}
HOT_REGION_BYTES = 1 << 20


class Emitter(Protocol):
    def changeset_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None: ...

    def recovery_point_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None: ...

    def metrics(self, volume: str, record: records.VolumeMetrics) -> None: ...


@dataclass(frozen=True)
class FoldOptions:
    subinterval: float = 0.25
    """seconds of log time a sub-interval stays open: a write waits up to this long before it ships
    (the RPO), and overwrites within it fold into one"""
    rp_interval: float = 10.0
    metrics_interval: float = 5.0
    subinterval_max_bytes: int = 32 << 20
    """seal early when the open sub-interval's dirty blocks reach this; the cache of recent writes
    (recent_writes.py) must hold that much for a seal to read nothing back"""
    extent_bytes: int = DEFAULT_EXTENT_BYTES


class VolumeFolder:
    """Stateless helper: every call takes the volume's state and mutates it (the caller saves it)."""

    def __init__(
        self, store: MutableMapping[bytes, bytes], emit: Emitter, options: FoldOptions, source: WriteSource
    ) -> None:
        self.store = store
        self.emit = emit
        self.options = options
        self.source = source

    # -- writes --------------------------------------------------------------------------------
    def on_write(self, state: VolumeState, ref: int, record: dict[str, Any], now: float) -> None:
        """Fold the BlockWrite at journal offset `ref` (its data must be readable from `source`).

        Raises RefusedEventError (after counting it, and requesting a resync for a seq conflict)
        when admission.py refuses the write; a real duplicate is dropped silently.
        """
        seq = record["seq"]
        if generation_of(record) > state.generation:
            self._adopt_generation(state, generation_of(record), now)
        verdict = admit_write(state, record)
        if verdict.action == DROP:
            state.duplicates += 1
            return
        if verdict.action == REFUSE:
            self._refuse(state, verdict, seq, now)
        if state.open is not None and now - state.open.started_at >= self.options.subinterval:
            # The sub-interval ended before this write: seal it now rather than at the next tick,
            # so under a steady stream a write waits one sub-interval, not one plus a tick.
            self.seal(state, now, "INTERVAL")
            self._cut_if_due(state, now)
        if record["epoch"] != state.epoch:
            if state.epoch != -1:
                state.epochs_seen += 1
            state.epoch = record["epoch"]
        if verdict.resync:
            self._resync(state, seq, now, "seq gap: writes missing from the journal")
        state.seq_restart = False
        remember(state, record)
        if not state.rp_started_at:
            state.rp_started_at = now
        open_ = self._open(state, now)
        if open_.first_seq < 0:
            open_.first_seq = seq
            open_.first_ref = ref
            open_.oldest_write_us = record["timestamp"]
        track(state, ref, record)
        open_.last_seq = seq
        open_.bytes += record["length"]
        state.last_seq = seq
        window = self._window(state, now)
        window.writes += 1
        window.bytes_written += record["length"]
        region = record["offset"] // HOT_REGION_BYTES
        window.hot_regions[region] = window.hot_regions.get(region, 0) + 1
        if state.refs.block_count * state.block_size >= self.options.subinterval_max_bytes:
            self.seal(state, now, "SIZE")
            self._cut_if_due(state, now)

    def on_marker(self, state: VolumeState, record: dict[str, Any], now: float) -> None:
        """Adopt a newer generation; refuse a tracker's marker of an older one; cut a point.

        A marker without an epoch comes from an operator (`rp create`, failover), not a tracker,
        and is never fenced.
        """
        generation = generation_of(record)
        if generation > state.generation:
            self._adopt_generation(state, generation, now)
        elif record.get("epoch") is not None:
            verdict = fenced(state, record, f"{record['kind']} marker {record['marker_id']}")
            if verdict is not None:
                self._refuse(state, verdict, state.last_seq, now)
        kind = record["kind"]
        if kind == "EPOCH_START" and record.get("epoch") is not None:
            self._start_epoch(state, record)
        if kind == "FLUSH" and self._unchanged_since_last_point(state):
            return  # the point would equal the last one
        if kind in RP_KINDS:
            self.cut(state, now, RP_KINDS[kind], record.get("label"), record.get("group"), record.get("barrier_id"))

    @staticmethod
    def _unchanged_since_last_point(state: VolumeState) -> bool:
        """No write since the last point: nothing open, no sealed set awaiting a point.

        A FLUSH then cuts nothing. After an outage a tracker releases every FLUSH marker it parked,
        all after the drain, so they would be as many identical points (a fault run released 915,
        and the mirror spent minutes applying them). A requested point or a barrier is always cut:
        someone waits for its label or its group."""
        return state.last_rp is not None and state.rp_first_changeset is None and state.open is None

    def _start_epoch(self, state: VolumeState, record: dict[str, Any]) -> None:
        """A tracker's new epoch: later writes of older epochs are stale, and the seqs it skipped
        (assigned before, never confirmed, published again now) are not a gap (admission.py)."""
        epoch, after_seq = record["epoch"], record.get("after_seq")
        if state.seq_restart:  # a new generation's tracker: its own epochs, and its first write starts the seqs
            state.epoch = epoch
            return
        if epoch > state.epoch:
            if state.epoch != -1:
                state.epochs_seen += 1
            state.epoch = epoch
        skipped = skip_to(state, after_seq) if after_seq is not None else 0
        if skipped:
            state.skipped_seqs += skipped
            log.info(
                "volume %s: epoch %d starts after seq %d: %d seqs of the previous epoch were never confirmed "
                "(their blocks come again in this epoch)", state.volume, epoch, after_seq, skipped,
            )  # fmt: skip

    def on_tick(self, state: VolumeState, now: float) -> None:
        """Seal a sub-interval that is due, or any open one once a periodic point is due; cut a due
        point right after a seal.

        A tick does not wait for the open sub-interval to end when a point is due: the point comes
        at the first tick past its due time (ticks come every `tick_interval`), not up to one
        sub-interval later. A write never seals early for a point (the sub-interval's end or its
        size does), so a point cut on a write still excludes that write."""
        if state.open is not None and (
            now - state.open.started_at >= self.options.subinterval or self._point_due(state, now)
        ):
            self.seal(state, now, "INTERVAL")
        if state.open is None:
            self._cut_if_due(state, now)
        window = state.window
        if window is not None and now - window.started_at >= self.options.metrics_interval:
            self._emit_metrics(state, window, now)
            busy = state.open is not None or state.rp_first_changeset is not None
            state.window = MetricsWindow(started_at=now) if busy else None

    # -- sealing -------------------------------------------------------------------------------
    def seal(self, state: VolumeState, now: float, reason: str, rp_id: int | None = None) -> int:
        """Emit the open sub-interval as one change set; return its bytes (0 if empty).

        The seal carries the volume's generation as the log has shown it so far: every write of the
        set is of that generation (`_adopt_generation` seals before a newer one takes over).
        """
        open_ = state.open or OpenSubInterval(started_at=now, first_seq=state.last_seq + 1, last_seq=state.last_seq)
        changeset = state.next_changeset
        sealer = ExtentSealer(state.block_size, self.options.extent_bytes)
        checksums: list[bytes] = []
        shipped = 0
        for extent in sealer.seal(*state.refs.by_ref(), self.source):
            self.emit.changeset_event(
                state.volume,
                "Extent",
                records.extent(
                    volume=state.volume,
                    changeset_id=changeset,
                    index=extent.index,
                    offset=extent.offset,
                    length=extent.length,
                    op=extent.op,
                    compression="NONE",
                    data=extent.data,
                    checksum=extent.checksum,
                ),
            )
            checksums.append(extent.checksum)
            shipped += extent.length
        bitmap = state.refs.bitmap()
        bitmap.run_optimize()
        self.emit.changeset_event(
            state.volume,
            "ChangeSetSealed",
            records.change_set_sealed(
                volume=state.volume,
                changeset_id=changeset,
                epoch=max(state.epoch, 0),
                seq_first=open_.first_seq,
                seq_last=open_.last_seq,
                extent_count=len(checksums),
                block_size=state.block_size,
                block_count=state.refs.block_count,
                bytes=shipped,
                bitmap=bitmap.serialize(),
                digest=changeset_digest(checksums),
                sealed_at=int(now * 1000),
                reason=reason,
                rp_id=rp_id,
                generation=state.generation,
            ),
        )
        # every run has its digests (ExtentSealer), so in block order they pair with `blocks()`
        digests = sealer.digests
        pairs = Batch(state.refs.blocks(), array("Q", b"".join(map(digests.__getitem__, sorted(digests)))))
        store_batches(self.store, state.volume, changeset, [pairs])
        if state.rp_first_changeset is None:
            state.rp_first_changeset = changeset
        state.next_changeset += 1
        state.open = None
        state.refs = BlockRefs()
        self._window(state, now).bytes_shipped += shipped
        return shipped

    def cut(
        self,
        state: VolumeState,
        now: float,
        kind: str,
        label: str | None,
        group: str | None,
        barrier_id: str | None,
    ) -> None:
        """Seal what is open, then emit the point: its chunks in block order, the header last."""
        rp_id = state.next_rp
        first_changeset = state.next_changeset if state.rp_first_changeset is None else state.rp_first_changeset
        cut_bytes = self.seal(state, now, "CUT", rp_id)
        changesets = range(first_changeset, state.next_changeset)
        merged = merge_point(self.store, state.volume, changesets)
        chunk_count = block_count = 0
        for chunk in point_chunks(merged):
            self.emit.recovery_point_event(
                state.volume,
                "RecoveryPointChunk",
                records.recovery_point_chunk(
                    volume=state.volume,
                    rp_id=rp_id,
                    index=chunk.index,
                    first_block=chunk.first_block,
                    last_block=chunk.last_block,
                    bitmap=chunk.bitmap,
                    checksums=chunk.checksums,
                ),
            )
            chunk_count += 1
            block_count += chunk.count
        self.emit.recovery_point_event(
            state.volume,
            "RecoveryPoint",
            records.recovery_point(
                volume=state.volume,
                rp_id=rp_id,
                seq=state.last_seq,
                created_at=int(now * 1000),
                kind=kind,
                label=label,
                parent=state.last_rp,
                block_size=state.block_size,
                volume_size=state.size,
                block_count=block_count,
                chunk_count=chunk_count,
                changeset_first=first_changeset,
                changeset_last=state.next_changeset - 1,
                changed_bytes=block_count * state.block_size,
                cut_bytes=cut_bytes,
                group=group,
                barrier_id=barrier_id,
                generation=state.generation,
            ),
        )
        for changeset in changesets:
            delete_checksums(self.store, state.volume, changeset)
        state.rp_first_changeset = None
        state.last_rp = rp_id
        state.next_rp += 1
        state.rp_started_at = now

    # -- helpers -------------------------------------------------------------------------------
    def _point_due(self, state: VolumeState, now: float) -> bool:
        return now - state.rp_started_at >= self.options.rp_interval

    def _cut_if_due(self, state: VolumeState, now: float) -> None:
        if self._point_due(state, now) and state.rp_first_changeset is not None:
            self.cut(state, now, "PERIODIC", None, None, None)

    def _open(self, state: VolumeState, now: float) -> OpenSubInterval:
        if state.open is None:
            state.open = OpenSubInterval(started_at=now)
        return state.open

    def _window(self, state: VolumeState, now: float) -> MetricsWindow:
        if state.window is None:
            state.window = MetricsWindow(started_at=now)
        return state.window

    def request_resync(self, state: VolumeState, now: float, reason: str) -> None:
        """Ask for a resync of the whole volume (no seq seen: `seen_seq` is -1)."""
        self._resync(state, -1, now, reason)

    def dead_lettered(self, state: VolumeState, now: float) -> None:
        """Count a dead letter of this volume in its metrics window."""
        self._window(state, now).dead_letters += 1

    def _adopt_generation(self, state: VolumeState, generation: int, now: float) -> None:
        """From here on the volume is at `generation`: no change set mixes two generations."""
        if state.open is not None:
            self.seal(state, now, "INTERVAL")
        state.generation = generation
        state.seq_restart = True
        state.recent = bytearray()

    def _refuse(self, state: VolumeState, verdict: Verdict, seq: int, now: float) -> NoReturn:
        window = self._window(state, now)
        if verdict.fenced:
            window.fenced_events += 1
        if verdict.resync:
            self._resync(state, seq, now, verdict.reason)
        raise RefusedEventError(verdict.reason, fenced=verdict.fenced)

    def _resync(self, state: VolumeState, seen: int, now: float, reason: str) -> None:
        self._window(state, now).resync_requests += 1
        self.emit.changeset_event(
            state.volume,
            "ResyncRequest",
            records.resync_request(
                volume=state.volume,
                epoch=max(state.epoch, 0),
                expected_seq=state.last_seq + 1,
                seen_seq=seen,
                reason=reason,
                timestamp=int(now * 1000),
            ),
        )

    def _emit_metrics(self, state: VolumeState, window: MetricsWindow, now: float) -> None:
        span = max(now - window.started_at, 1e-3)
        hottest = heapq.nlargest(5, window.hot_regions.items(), key=lambda item: (item[1], -item[0]))
        lag = 0.0
        if state.open is not None and state.open.oldest_write_us:
            lag = max(0.0, now - state.open.oldest_write_us / 1e6)
        self.emit.metrics(
            state.volume,
            records.volume_metrics(
                volume=state.volume,
                window_start=int(window.started_at * 1000),
                window_end=int(now * 1000),
                writes=window.writes,
                bytes_written=window.bytes_written,
                bytes_shipped=window.bytes_shipped,
                writes_per_second=window.writes / span,
                bytes_per_second=window.bytes_written / span,
                overwrite_ratio=window.bytes_written / window.bytes_shipped if window.bytes_shipped else 0.0,
                hottest_extents=[
                    records.hot_extent(offset=r * HOT_REGION_BYTES, length=HOT_REGION_BYTES, writes=n)
                    for r, n in hottest
                ],
                rpo_lag_seconds=lag,
                resync_requests=window.resync_requests,
                dead_letters=window.dead_letters,
                fenced_events=window.fenced_events,
            ),
        )


def track(state: VolumeState, ref: int, record: dict[str, Any]) -> None:
    """Point the write's blocks at its journal offset (folding, and re-folding after a restart)."""
    block_size = state.block_size
    state.refs.assign(record["offset"] // block_size, record["length"] // block_size, ref)
