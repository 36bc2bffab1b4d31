"""The processor's logic per volume: fold writes, seal sub-intervals, cut recovery points.

Independent of Kafka: `store` is any mutable mapping of bytes (the RocksDB partition store in production,
a dict in the property tests) and `emit` sends events. "Now" is always the time of the event
being handled (the Kafka message timestamp), never the wall clock, so replaying the same log
after a crash makes the same decisions and emits the same change sets and recovery points.
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import xxhash
from pyroaring import BitMap

from .folding import (
    BlockVersion,
    block_checksum,
    changeset_digest,
    merge_checksums,
    pack_checksums,
    seal_extents,
    split_write,
)
from .volume_state import MetricsWindow, OpenSubInterval, VolumeState

RP_KINDS = {"REQUESTED": "REQUESTED", "FLUSH": "FLUSH", "BARRIER": "BARRIER"}
HOT_REGION_BYTES = 1 << 20


class Emitter(Protocol):
    def changeset_event(self, volume: str, record_type: str, record: dict[str, Any]) -> None: ...

    def recovery_point(self, volume: str, record: dict[str, Any]) -> None: ...

    def metrics(self, volume: str, record: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class FoldOptions:
    subinterval: float = 1.0
    rp_interval: float = 10.0
    metrics_interval: float = 5.0
    subinterval_max_bytes: int = 64 << 20
    extent_bytes: int = 256 << 10


def _block_key(volume: str, block: int) -> bytes:
    return b"b\x00" + volume.encode() + b"\x00" + block.to_bytes(8, "big")


def _changes_key(volume: str, changeset: int) -> bytes:
    return b"c\x00" + volume.encode() + b"\x00" + changeset.to_bytes(8, "big")


class VolumeFolder:
    """Stateless helper: every call takes the volume's state and mutates it (the caller saves it)."""

    def __init__(self, store: MutableMapping[bytes, bytes], emit: Emitter, options: FoldOptions) -> None:
        self.store = store
        self.emit = emit
        self.options = options

    # -- writes --------------------------------------------------------------------------------
    def on_write(self, state: VolumeState, record: dict[str, Any], data: bytes, now: float) -> None:
        seq = record["seq"]
        if seq <= state.last_seq:
            state.duplicates += 1
            return
        if record["epoch"] != state.epoch:
            if state.epoch != -1:
                state.epochs_seen += 1
            state.epoch = record["epoch"]
        if seq != state.last_seq + 1:
            self._resync(state, seq, now, "seq gap: writes missing from the journal")
        if not state.rp_started_at:
            state.rp_started_at = now
        open_ = self._open(state, now)
        if open_.first_seq < 0:
            open_.first_seq = seq
            open_.oldest_write_us = record["timestamp"]
        for block, version in split_write(
            record["offset"], record["op"], data, record["length"], state.block_size, seq
        ):
            self.store[_block_key(state.volume, block)] = version.pack()
            open_.blocks.add(block)
        open_.last_seq = seq
        open_.bytes += record["length"]
        state.last_seq = seq
        window = self._window(state, now)
        window.writes += 1
        window.bytes_written += record["length"]
        region = str(record["offset"] // HOT_REGION_BYTES)
        window.hot_regions[region] = window.hot_regions.get(region, 0) + 1
        if len(open_.blocks) * state.block_size >= self.options.subinterval_max_bytes:
            self.seal(state, now, "SIZE")

    def on_marker(self, state: VolumeState, record: dict[str, Any], now: float) -> None:
        kind = record["kind"]
        if kind in RP_KINDS:
            self.cut(state, now, RP_KINDS[kind], record.get("label"), record.get("group"), record.get("barrier_id"))

    def on_tick(self, state: VolumeState, now: float) -> None:
        """Seal a sub-interval that is due; cut a periodic point only at a sub-interval boundary.

        A due periodic point waits (at most one sub-interval) until the open sub-interval is
        sealed, so the cut itself ships nothing: that is what makes cutting cheap.
        """
        if state.open is not None and now - state.open.started_at >= self.options.subinterval:
            self.seal(state, now, "INTERVAL")
        due = now - state.rp_started_at >= self.options.rp_interval
        if due and state.open is None and state.changesets_since_rp:
            self.cut(state, now, "PERIODIC", None, None, None)
        window = self._window(state, now)
        if now - window.started_at >= self.options.metrics_interval:
            self._emit_metrics(state, window, now)
            state.window = MetricsWindow(started_at=now)

    # -- sealing -------------------------------------------------------------------------------
    def seal(self, state: VolumeState, now: float, reason: str, rp_id: int | None = None) -> int:
        """Emit the open sub-interval as one change set; return its bytes (0 if empty)."""
        open_ = state.open or OpenSubInterval(started_at=now, first_seq=state.last_seq + 1, last_seq=state.last_seq)
        changeset = state.next_changeset
        block_size = state.block_size
        zero_digest = xxhash.xxh3_64_digest(bytes(block_size))
        keys = {block: _block_key(state.volume, block) for block in open_.blocks}
        versions: dict[int, BlockVersion] = {b: BlockVersion.unpack(self.store[k]) for b, k in keys.items()}
        checksums: list[bytes] = []
        shipped = 0
        count = 0
        for extent in seal_extents(open_.blocks, versions.__getitem__, block_size, self.options.extent_bytes):
            self.emit.changeset_event(
                state.volume,
                "Extent",
                {
                    "volume": state.volume,
                    "changeset_id": changeset,
                    "index": extent.index,
                    "offset": extent.offset,
                    "length": extent.length,
                    "op": extent.op,
                    "compression": "NONE",
                    "data": extent.data,
                    "checksum": extent.checksum,
                },
            )
            checksums.append(extent.checksum)
            shipped += extent.length
            count += 1
        self.emit.changeset_event(
            state.volume,
            "ChangeSetSealed",
            {
                "volume": state.volume,
                "changeset_id": changeset,
                "epoch": max(state.epoch, 0),
                "seq_first": open_.first_seq,
                "seq_last": open_.last_seq,
                "extent_count": count,
                "block_size": block_size,
                "block_count": len(open_.blocks),
                "bytes": shipped,
                "bitmap": open_.blocks.serialize(),
                "digest": changeset_digest(checksums),
                "sealed_at": int(now * 1000),
                "reason": reason,
                "rp_id": rp_id,
            },
        )
        pairs = ((b, block_checksum(versions[b], zero_digest)) for b in open_.blocks)
        self.store[_changes_key(state.volume, changeset)] = pack_checksums(pairs)
        for key in keys.values():
            del self.store[key]
        state.changesets_since_rp.append(changeset)
        state.next_changeset += 1
        state.open = None
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
        rp_id = state.next_rp
        first_changeset = state.changesets_since_rp[0] if state.changesets_since_rp else state.next_changeset
        cut_bytes = self.seal(state, now, "CUT", rp_id)
        keys = [_changes_key(state.volume, c) for c in state.changesets_since_rp]
        merged = merge_checksums(self.store[k] for k in keys)
        blocks = BitMap(merged)
        self.emit.recovery_point(
            state.volume,
            {
                "volume": state.volume,
                "rp_id": rp_id,
                "seq": state.last_seq,
                "created_at": int(now * 1000),
                "kind": kind,
                "label": label,
                "parent": state.last_rp,
                "block_size": state.block_size,
                "volume_size": state.size,
                "bitmap": blocks.serialize(),
                "checksums": b"".join(merged[b] for b in blocks),
                "changeset_first": first_changeset,
                "changeset_last": state.next_changeset - 1,
                "changed_bytes": len(blocks) * state.block_size,
                "cut_bytes": cut_bytes,
                "group": group,
                "barrier_id": barrier_id,
            },
        )
        for key in keys:
            del self.store[key]
        state.changesets_since_rp = []
        state.last_rp = rp_id
        state.next_rp += 1
        state.rp_started_at = now

    # -- helpers -------------------------------------------------------------------------------
    def _open(self, state: VolumeState, now: float) -> OpenSubInterval:
        if state.open is None:
            state.open = OpenSubInterval(started_at=now)
        return state.open

    def _window(self, state: VolumeState, now: float) -> MetricsWindow:
        if state.window is None:
            state.window = MetricsWindow(started_at=now)
        return state.window

    def _resync(self, state: VolumeState, seen: int, now: float, reason: str) -> None:
        self._window(state, now).resync_requests += 1
        self.emit.changeset_event(
            state.volume,
            "ResyncRequest",
            {
                "volume": state.volume,
                "epoch": max(state.epoch, 0),
                "expected_seq": state.last_seq + 1,
                "seen_seq": seen,
                "reason": reason,
                "bitmap": None,
                "timestamp": int(now * 1000),
            },
        )

    def _emit_metrics(self, state: VolumeState, window: MetricsWindow, now: float) -> None:
        span = max(now - window.started_at, 1e-3)
        hottest = heapq.nlargest(5, window.hot_regions.items(), key=lambda item: item[1])
        lag = 0.0
        if state.open is not None and state.open.oldest_write_us:
            lag = max(0.0, now - state.open.oldest_write_us / 1e6)
        self.emit.metrics(
            state.volume,
            {
                "volume": state.volume,
                "window_start": int(window.started_at * 1000),
                "window_end": int(now * 1000),
                "writes": window.writes,
                "bytes_written": window.bytes_written,
                "bytes_shipped": window.bytes_shipped,
                "writes_per_second": window.writes / span,
                "bytes_per_second": window.bytes_written / span,
                "overwrite_ratio": window.bytes_written / window.bytes_shipped if window.bytes_shipped else 0.0,
                "hottest_extents": [
                    {"offset": int(r) * HOT_REGION_BYTES, "length": HOT_REGION_BYTES, "writes": n} for r, n in hottest
                ],
                "rpo_lag_seconds": lag,
                "resync_requests": window.resync_requests,
                "dead_letters": window.dead_letters,
            },
        )

