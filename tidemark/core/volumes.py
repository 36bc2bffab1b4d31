"""The volume registry: `Volume` events on the compacted volumes topic, read back whole.

Each volume carries its primary generation and site. A failover bumps the generation with
`bump_generation`: first a generation marker into the volume's writes partition (the processor
fences older generations from that position on, in log order), then the new registry record (the
trackers learn it there). A crash between the two leaves the journal fenced and the registry
behind: running the failover again bumps once more, which is harmless.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

from tidemark.schemas import records
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError
from tidemark.schemas.topic_records import Topic, decode_on

from .exceptions import InvalidNameError, KafkaError, UnknownVolumeError, VolumeSpecError
from .kafka import KafkaClients
from .kafka_io import read_topic, topic_partitions
from .names import validate_name
from .partitioning import volume_partition
from .topics import Topics

DEFAULT_BLOCK_SIZE = 4096


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    size: int
    block_size: int = DEFAULT_BLOCK_SIZE
    group: str | None = None
    generation: int = 0
    """the primary generation: trackers of an older one are fenced (failover bumps it)"""
    primary_site: str | None = None
    """the site whose tracker writes this generation (None: the original primary)"""

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.group is not None:
            validate_name(self.group, "consistency group")
        if self.primary_site is not None:
            validate_name(self.primary_site, "site")
        if self.generation < 0:
            raise VolumeSpecError(f"volume {self.name}: generation {self.generation} must be >= 0")
        if self.block_size < 512 or self.block_size & (self.block_size - 1):
            raise VolumeSpecError(f"volume {self.name}: block size {self.block_size} must be a power of two >= 512")
        if self.size <= 0 or self.size % self.block_size:
            raise VolumeSpecError(
                f"volume {self.name}: size {self.size} must be a positive multiple of the block size {self.block_size}"
            )

    @property
    def blocks(self) -> int:
        return self.size // self.block_size

    def to_record(self, deleted: bool = False) -> records.Volume:
        return records.volume(
            name=self.name,
            size=self.size,
            block_size=self.block_size,
            group=self.group,
            created_at=int(time.time() * 1000),
            deleted=deleted,
            generation=self.generation,
            primary_site=self.primary_site,
        )

    @classmethod
    def from_record(cls, record: dict[str, object]) -> VolumeSpec:
        return cls(
            name=str(record["name"]),
            size=int(record["size"]),  # type: ignore[call-overload]
            block_size=int(record["block_size"]),  # type: ignore[call-overload]
            group=record.get("group"),  # type: ignore[arg-type]
            generation=int(record.get("generation") or 0),  # type: ignore[call-overload]
            primary_site=record.get("primary_site"),  # type: ignore[arg-type]
        )

    def next_generation(self, primary_site: str | None) -> VolumeSpec:
        """The spec after a failover to `primary_site`: the generation one higher."""
        return dataclasses.replace(self, generation=self.generation + 1, primary_site=primary_site)

    def generation_marker(self, timestamp_us: int) -> records.Marker:
        """The Marker that fences older generations in the journal: EPOCH_START, no epoch (no tracker)."""
        return records.marker(
            volume=self.name,
            marker_id=records.new_marker_id(),
            kind="EPOCH_START",
            timestamp=timestamp_us,
            label=f"generation {self.generation}" + (f" at {self.primary_site}" if self.primary_site else ""),
            generation=self.generation,
        )


def publish_volume(clients: KafkaClients, topics: Topics, spec: VolumeSpec, deleted: bool = False) -> None:
    value = None if deleted else default_codec().encode("Volume", spec.to_record())
    _produce_confirmed(clients, topics.volumes, spec.name, value, None, f"could not register volume {spec.name}")


def bump_generation(clients: KafkaClients, topics: Topics, name: str, primary_site: str | None) -> VolumeSpec:
    """Make `primary_site` the primary of volume `name` under the next generation; returns the new spec.

    The generation marker goes into the journal first (the processor refuses older generations
    from there on), then the registry record (trackers of an older generation stop on seeing it).
    """
    spec = lookup_volume(clients, topics, name).next_generation(primary_site)
    count = len(topic_partitions(clients.producer(), topics.writes, 30))
    marker = default_codec().encode("Marker", spec.generation_marker(int(time.time() * 1e6)))
    partition = volume_partition(name, count)
    what = f"volume {name}: could not write the generation {spec.generation} marker, nothing changed"
    _produce_confirmed(clients, topics.writes, name, marker, partition, what)
    publish_volume(clients, topics, spec)
    return spec


def _produce_confirmed(
    clients: KafkaClients, topic: str, key: str, value: bytes | None, partition: int | None, what: str
) -> None:
    producer = clients.producer()
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    kwargs: dict[str, Any] = {} if partition is None else {"partition": partition}
    producer.produce(topic, key=key.encode(), value=value, on_delivery=on_delivery, **kwargs)
    remaining = producer.flush(30)
    if remaining or errors:
        reason = errors[0] if errors else "not confirmed within 30 s"
        raise KafkaError(f"{what} on {topic}: {reason}; is the broker up?")


def read_volumes(clients: KafkaClients, topics: Topics, timeout: float = 30.0) -> dict[str, VolumeSpec]:
    """Every registered volume: the compacted topic read from its start to its current end."""
    volumes: dict[str, VolumeSpec] = {}
    try:
        for msg in read_topic(clients, topics.volumes, timeout=timeout, stall=None):
            _apply_registry_message(volumes, msg.key(), msg.value())
    except KafkaException as exc:
        raise KafkaError(f"reading the volume registry {topics.volumes}: {exc}") from exc
    return volumes


def _apply_registry_message(volumes: dict[str, VolumeSpec], key: bytes | None, value: bytes | None) -> None:
    name = key.decode(errors="replace") if key else None
    if value is None:
        if name:
            volumes.pop(name, None)
        return
    try:
        _, record = decode_on(Topic.VOLUMES, value)
        spec = VolumeSpec.from_record(record)
    except (DecodeError, VolumeSpecError, InvalidNameError):
        return
    if record.get("deleted"):
        volumes.pop(spec.name, None)
    else:
        volumes[spec.name] = spec


def lookup_volume(clients: KafkaClients, topics: Topics, name: str) -> VolumeSpec:
    validate_name(name)
    volumes = read_volumes(clients, topics)
    if name not in volumes:
        known = ", ".join(sorted(volumes)) or "none"
        raise UnknownVolumeError(
            f"unknown volume {name!r} (registered: {known}); add it with `tidemark volume add {name} --size BYTES`"
        )
    return volumes[name]
