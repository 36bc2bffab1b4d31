"""The handler: one message of the writes topic at a time, pure logic (the runner owns Kafka).

Per message: decode, validate, fold by reference (fold_volume.py), or send to dead letters. Ticks
(ticker.py) seal due sub-intervals and cut due points, touching only the volumes that need them.
Time is always the message timestamp, so processing the same log again makes the same decisions.

State per writes partition lives in memory while the partition is assigned: every VolumeState,
and the set of volumes ticks can change. A volume's state is written to the store once per
transaction, when it changed (`flush`); the store's record cache then sends the last value per key
to the changelog. After an assignment, `refold` rebuilds the open sub-intervals' block refs from
the journal itself (the "source-topic changelog": the changelog carries no per-write record).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tidemark.core.metrics import stage_metrics
from tidemark.core.volumes import VolumeSpec
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError
from tidemark.schemas.topic_records import Topic, decode_on

from .admission import generation_of
from .block_refs import BlockRefs
from .exceptions import InvalidEventError, ProcessorError, RefusedEventError
from .fold_volume import FoldOptions, VolumeFolder, track
from .kafka_emitter import COMPONENT, KafkaEmitter
from .recent_writes import RecentWrites
from .state_keys import partition_key, volume_state_key
from .ticker import TICK_KEY
from .validation import validate_write
from .volume_state import VolumeState
from .write_source import WriteData

log = logging.getLogger(__name__)

Message = tuple[int, bytes | None, bytes | None]
"""(offset, key, value) of one writes message."""


class Registry(Protocol):
    def get(self, name: str) -> VolumeSpec | None: ...


class JournalRead(Protocol):
    def read(self, partition: int, offsets: Sequence[int]) -> Iterator[Message]: ...


@dataclass
class PartitionVolumes:
    """One assigned writes partition: its store, its volumes' states, what ticks and flushes touch."""

    partition: int
    store: MutableMapping[bytes, bytes]
    folder: VolumeFolder
    states: dict[str, VolumeState] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    ticking: set[str] = field(default_factory=set)
    lost: dict[str, str] = field(default_factory=dict)
    """volume -> why: resync requests to emit with the partition's next message (see `journal_trimmed`)"""
    handled: dict[str, int] = field(default_factory=dict)
    """volume -> events folded since the last flush, for the metrics (counted once per transaction)"""

    def touched(self, state: VolumeState) -> None:
        self.dirty.add(state.volume)
        if state.needs_ticks:
            self.ticking.add(state.volume)


class PartitionWrites:
    """The WriteSource of one partition: the cache first, else the journal read back."""

    def __init__(self, handler: Handler, partition: int) -> None:
        self.handler = handler
        self.partition = partition

    def writes(self, refs: Sequence[int]) -> Iterator[tuple[int, WriteData]]:
        """Each write from the cache as it was when the seal started (nothing is cached during a seal)."""
        cached = self.handler.cache.get_many(self.partition, refs)
        missing = [ref for ref, write in zip(refs, cached, strict=True) if write is None]
        if not missing:
            yield from zip(refs, filter(None, cached), strict=True)  # all there (a WriteData is never falsy)
            return
        read_back = self.handler.journal.read(self.partition, missing)
        for ref, write in zip(refs, cached, strict=True):
            if write is not None:
                yield ref, write
                continue
            offset, _key, value = next(read_back)
            yield ref, self.handler.decode_folded(self.partition, offset, value)


class Handler:
    def __init__(
        self, emitter: KafkaEmitter, registry: Registry, options: FoldOptions, cache: RecentWrites, journal: JournalRead
    ) -> None:
        self.emitter = emitter
        self.registry = registry
        self.options = options
        self.cache = cache
        self.journal = journal
        self.codec = default_codec()
        self.partitions: dict[int, PartitionVolumes] = {}
        self.stats = {"events": 0, "dead_letters": 0, "fenced": 0, "ticks": 0, "read_back": 0, "refolded": 0}

    # -- assignment ----------------------------------------------------------------------------
    def assign(self, partition: int, store: MutableMapping[bytes, bytes]) -> PartitionVolumes:
        """Load the partition's committed states (the store was just restored from the changelog)."""
        volumes = PartitionVolumes(
            partition, store, VolumeFolder(store, self.emitter, self.options, PartitionWrites(self, partition))
        )
        raw = store.get(partition_key(partition))
        for name in json.loads(raw) if raw else []:
            state_raw = store.get(volume_state_key(name))
            if state_raw is not None:
                state = VolumeState.loads(state_raw)
                volumes.states[name] = state
                if state.needs_ticks:
                    volumes.ticking.add(name)
        self.partitions[partition] = volumes
        return volumes

    def refold_start(self, partition: int) -> int | None:
        """The first journal offset an open sub-interval of the partition refers to (None: none open)."""
        states = self.partitions[partition].states.values()
        firsts = [s.open.first_ref for s in states if s.open and s.open.first_seq >= 0]
        return min(firsts) if firsts else None

    def refold(self, partition: int, messages: Iterable[Message]) -> int:
        """Rebuild the block refs of open sub-intervals from the journal up to the committed position.

        `messages` run from `refold_start` to the committed position. A write counts exactly when
        it counted the first time: it belongs to its volume's open sub-interval (at or after
        `first_ref`), it is valid, it is of the volume's generation (a generation change seals the
        open sub-interval, so all its writes are of the current one), and its seq is new (a refused
        or duplicate seq is never above the last folded one). Nothing is emitted. Returns writes re-folded.
        """
        states = {name: s for name, s in self.partitions[partition].states.items() if s.open and s.open.first_seq >= 0}
        last_seq = {name: s.open.first_seq - 1 for name, s in states.items() if s.open}
        count = 0
        for offset, key, value in messages:
            if key == TICK_KEY or value is None:
                continue
            try:
                record_type, record = decode_on(Topic.WRITES, value, self.codec)
                state = states.get(record["volume"]) if record_type == "BlockWrite" else None
                if state is None or state.open is None or offset < state.open.first_ref:
                    continue
                if generation_of(record) != state.generation:
                    continue
                data = validate_write(record, _spec(state))
            except (DecodeError, InvalidEventError):
                continue
            if record["seq"] <= last_seq[state.volume]:
                continue
            last_seq[state.volume] = record["seq"]
            self.cache.put(partition, offset, WriteData(record["op"], record["offset"], record["length"], data))
            track(state, offset, record)
            count += 1
        for name, state in states.items():
            if state.open is not None and last_seq[name] != state.open.last_seq:
                raise ProcessorError(
                    f"volume {name}: re-folding {self.emitter.topics.writes}[{partition}] from offset "
                    f"{state.open.first_ref} found writes up to seq {last_seq[name]}, the state says "
                    f"{state.open.last_seq}: the journal lost writes of the open sub-interval"
                )
        self.stats["refolded"] += count
        return count

    def journal_trimmed(self, partition: int, committed: int, low: int) -> list[str]:
        """Retention deleted the partition's offsets below `low`: request resyncs, never skip silently.

        When the committed position is below `low`, writes the processor never folded are gone:
        every volume known on the partition gets a ResyncRequest. An open sub-interval that starts
        below `low` cannot be read back for its seal: it is dropped, and its volume resyncs too.
        Such a volume's next write starts its seqs again (the resync covers what lies between).
        The requests go out with the partition's next message (a tick at the latest), in its
        transaction and with its timestamp; a crash before that commit finds the same positions
        again. Returns the volumes to resync.
        """
        volumes = self.partitions[partition]
        where = f"{self.emitter.topics.writes}[{partition}]"
        for name, state in sorted(volumes.states.items()):
            if committed < low:
                why = (
                    f"retention deleted {where} offsets {committed}..{low - 1} before the processor folded them "
                    f"(volume {name} may have lost writes after seq {state.last_seq}); raise the writes topic's "
                    "retention.ms or keep the processor running"
                )
            elif state.open is not None and state.open.first_ref < low:
                why = (
                    f"retention deleted {where} below offset {low}, inside the open sub-interval of volume {name} "
                    f"(from offset {state.open.first_ref}): its writes cannot be shipped; raise retention.ms"
                )
            else:
                continue
            volumes.lost[name] = why
            state.open = None
            state.refs = BlockRefs()
            state.seq_restart = True
            volumes.dirty.add(name)
        return sorted(volumes.lost)

    def revoke(self, partition: int) -> None:
        volumes = self.partitions.pop(partition, None)
        if volumes is not None:
            _count_handled(volumes)

    # -- messages ------------------------------------------------------------------------------
    def handle(self, partition: int, offset: int, key: bytes | None, value: bytes | None, now: float) -> None:
        volumes = self.partitions[partition]
        self.emitter.source_at = (partition, offset, key, now)
        folder = volumes.folder
        if volumes.lost:
            for name, why in sorted(volumes.lost.items()):
                folder.request_resync(volumes.states[name], now, why)
                volumes.touched(volumes.states[name])
            volumes.lost.clear()
        if key == TICK_KEY:
            self.stats["ticks"] += 1
            self._tick(volumes, folder, now)
            return
        self.stats["events"] += 1
        state: VolumeState | None = None
        try:
            if value is None:
                raise InvalidEventError("empty message (no value)")
            record_type, record = decode_on(Topic.WRITES, value, self.codec)
            spec = self.registry.get(record["volume"])
            if record_type == "BlockWrite":
                data = validate_write(record, spec)
            elif spec is None:
                raise InvalidEventError(f"marker for unknown volume {record['volume']}")
            assert spec is not None
            state = self._state(volumes, spec)
            if record_type == "BlockWrite":
                self.cache.put(partition, offset, WriteData(record["op"], record["offset"], record["length"], data))
                folder.on_write(state, offset, record, now)
            else:
                folder.on_marker(state, record, now)
            volumes.touched(state)
            volumes.handled[spec.name] = volumes.handled.get(spec.name, 0) + 1
        except (DecodeError, InvalidEventError) as exc:
            self.stats["dead_letters"] += 1
            volume = key.decode(errors="replace") if key else None
            if state is not None:
                folder.dead_lettered(state, now)
                volumes.touched(state)
            if isinstance(exc, RefusedEventError) and exc.fenced:
                self.stats["fenced"] += 1
                self.emitter.fenced(state.volume if state else volume or "")
            self.emitter.dead_letter(str(exc), value, volume)

    def flush(self, partition: int) -> None:
        """Write every state changed since the last flush to the store, and count the events folded
        since then in the metrics (once per transaction)."""
        volumes = self.partitions[partition]
        for name in sorted(volumes.dirty):
            volumes.store[volume_state_key(name)] = volumes.states[name].dumps()
        volumes.dirty.clear()
        _count_handled(volumes)

    def decode_folded(self, partition: int, offset: int, value: bytes | None) -> WriteData:
        """A write read back for a seal (it was valid when folded, so it must be now)."""
        self.stats["read_back"] += 1
        try:
            if value is None:
                raise InvalidEventError("empty message")
            _record_type, record = self.codec.decode(value)
            state = self.partitions[partition].states[record["volume"]]
            data = validate_write(record, _spec(state))
        except (DecodeError, InvalidEventError, KeyError) as exc:
            raise ProcessorError(
                f"{self.emitter.topics.writes}[{partition}]@{offset}, folded earlier, no longer reads back as a "
                f"valid write ({exc}); the journal changed under the processor"
            ) from exc
        return WriteData(record["op"], record["offset"], record["length"], data)

    def _tick(self, volumes: PartitionVolumes, folder: VolumeFolder, now: float) -> None:
        for name in sorted(volumes.ticking):
            state = volumes.states[name]
            folder.on_tick(state, now)
            volumes.dirty.add(name)
            if not state.needs_ticks:
                volumes.ticking.discard(name)

    def _state(self, volumes: PartitionVolumes, spec: VolumeSpec) -> VolumeState:
        state = volumes.states.get(spec.name)
        if state is None:
            state = volumes.states[spec.name] = VolumeState(
                volume=spec.name, block_size=spec.block_size, size=spec.size
            )
            volumes.store[partition_key(volumes.partition)] = json.dumps(sorted(volumes.states)).encode()
        return state


def _count_handled(volumes: PartitionVolumes) -> None:
    """Add the events folded since the last count to the metrics (per volume, once per transaction)."""
    for name, count in volumes.handled.items():
        stage_metrics(COMPONENT, name).handled(count)
    volumes.handled.clear()


def _spec(state: VolumeState) -> VolumeSpec:
    return VolumeSpec(state.volume, state.size, state.block_size)
