"""Handling one message of the writes topic: decode, validate, fold, or send to dead letters.

Sealing happens only here, in partition order. Idle volumes still need their open sub-interval
closed on time, so a ticker writes a "tick" (a reserved key no volume name can have) into every
writes partition; it is handled like any event, with the tick's timestamp as "now". Time is
always the message timestamp, so processing the same log again makes the same decisions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

from confluent_kafka import Producer

from tidemark.core.kafka import KafkaClients
from tidemark.core.metrics import stage_metrics
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .exceptions import InvalidEventError
from .folder import FoldOptions, VolumeFolder
from .registry_cache import RegistryCache
from .validation import validate_write
from .volume_state import VolumeState

log = logging.getLogger(__name__)

TICK_KEY = b"__tidemark_tick__"
COMPONENT = "processor"

Produce = Callable[[str, bytes | None, bytes], None]


class KafkaEmitter:
    """Encodes the folder's events and hands them to `produce` (the loop's transactional producer)."""

    def __init__(self, topics: Topics, produce: Produce) -> None:
        self.topics = topics
        self.produce = produce
        self.codec = default_codec()

    def changeset_event(self, volume: str, record_type: str, record: dict[str, Any]) -> None:
        self.produce(self.topics.changesets, volume.encode(), self.codec.encode(record_type, record))
        if record_type == "ChangeSetSealed":
            stage_metrics(COMPONENT, volume).handled(0, record["bytes"])
        elif record_type == "ResyncRequest":
            stage_metrics(COMPONENT, volume).resync_request()

    def recovery_point(self, volume: str, record: dict[str, Any]) -> None:
        self.produce(self.topics.recovery_points, volume.encode(), self.codec.encode("RecoveryPoint", record))
        stage_metrics(COMPONENT, volume).recovery_point()

    def metrics(self, volume: str, record: dict[str, Any]) -> None:
        self.produce(self.topics.metrics, volume.encode(), self.codec.encode("VolumeMetrics", record))
        stage_metrics(COMPONENT, volume).lag(record["rpo_lag_seconds"])


class Processor:
    def __init__(self, emitter: KafkaEmitter, registry: RegistryCache, options: FoldOptions) -> None:
        self.emitter = emitter
        self.registry = registry
        self.options = options
        self.codec = default_codec()
        self.stats = {"events": 0, "dead_letters": 0, "ticks": 0}

    def handle(
        self,
        store: MutableMapping[bytes, bytes],
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        now: float,
    ) -> None:
        folder = VolumeFolder(store, self.emitter, self.options)
        if key == TICK_KEY:
            self.stats["ticks"] += 1
            self._tick(store, folder, partition, now)
            return
        self.stats["events"] += 1
        try:
            if value is None:
                raise InvalidEventError("empty message (no value)")
            record_type, record = self.codec.decode(value)
            if record_type not in ("BlockWrite", "Marker"):
                raise InvalidEventError(f"{record_type} does not belong on the writes topic")
            spec = self.registry.get(record["volume"])
            if record_type == "BlockWrite":
                data = validate_write(record, spec)
            elif spec is None:
                raise InvalidEventError(f"marker for unknown volume {record['volume']}")
            assert spec is not None
            state = _load(store, partition, spec.name, spec.block_size, spec.size)
            if record_type == "BlockWrite":
                folder.on_write(state, record, data, now)
            else:
                folder.on_marker(state, record, now)
            _save(store, state)
            stage_metrics(COMPONENT, spec.name).handled(1)
        except (DecodeError, InvalidEventError) as exc:
            self._dead_letter(partition, offset, key, value or b"", str(exc), now)

    def _tick(self, store: MutableMapping[bytes, bytes], folder: VolumeFolder, partition: int, now: float) -> None:
        for volume in _partition_volumes(store, partition):
            raw = store.get(_state_key(volume))
            if raw is None:
                continue
            state = VolumeState.loads(raw)
            folder.on_tick(state, now)
            _save(store, state)

    def _dead_letter(self, partition: int, offset: int, key: bytes | None, value: bytes, reason: str, now: float) -> None:
        self.stats["dead_letters"] += 1
        volume = key.decode(errors="replace") if key else None
        stage_metrics(COMPONENT, volume or "").dead_letter()
        log.warning("dead letter from %s[%d]@%d: %s", self.emitter.topics.writes, partition, offset, reason)
        record = {
            "stage": "processor",
            "reason": reason,
            "topic": self.emitter.topics.writes,
            "partition": partition,
            "offset": offset,
            "key": key,
            "value": value,
            "volume": volume,
            "timestamp": int(now * 1000),
        }
        self.emitter.produce(self.emitter.topics.dead_letters, key, self.codec.encode("DeadLetter", record))


def _state_key(volume: str) -> bytes:
    return b"s\x00" + volume.encode()


def _partition_key(partition: int) -> bytes:
    return b"p\x00%d" % partition


def _partition_volumes(store: MutableMapping[bytes, bytes], partition: int) -> list[str]:
    raw = store.get(_partition_key(partition))
    return json.loads(raw) if raw else []


def _load(store: MutableMapping[bytes, bytes], partition: int, volume: str, block_size: int, size: int) -> VolumeState:
    raw = store.get(_state_key(volume))
    if raw is not None:
        return VolumeState.loads(raw)
    members = _partition_volumes(store, partition)
    if volume not in members:
        store[_partition_key(partition)] = json.dumps(sorted([*members, volume])).encode()
    return VolumeState(volume=volume, block_size=block_size, size=size)


def _save(store: MutableMapping[bytes, bytes], state: VolumeState) -> None:
    store[_state_key(state.volume)] = state.dumps()


class Ticker:
    """Writes tick messages into every writes partition (see the module docstring)."""

    def __init__(self, clients: KafkaClients, topic: str, partitions: int) -> None:
        self._producer: Producer = clients.producer(**{"linger.ms": 0, "enable.idempotence": False, "acks": 1})
        self._topic = topic
        self._partitions = partitions

    def tick(self) -> None:
        for partition in range(self._partitions):
            try:
                self._producer.produce(self._topic, key=TICK_KEY, value=b"", partition=partition)
            except BufferError:
                break
        self._producer.poll(0)

    def close(self) -> None:
        self._producer.flush(5)
