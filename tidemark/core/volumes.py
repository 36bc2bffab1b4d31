"""The volume registry: `Volume` events on the compacted volumes topic, read back whole."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .exceptions import InvalidNameError, KafkaError, UnknownVolumeError, VolumeSpecError
from .kafka import KafkaClients
from .names import validate_name
from .topics import Topics

DEFAULT_BLOCK_SIZE = 4096


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    size: int
    block_size: int = DEFAULT_BLOCK_SIZE
    group: str | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.group is not None:
            validate_name(self.group, "consistency group")
        if self.block_size < 512 or self.block_size & (self.block_size - 1):
            raise VolumeSpecError(
                f"volume {self.name}: block size {self.block_size} must be a power of two >= 512"
            )
        if self.size <= 0 or self.size % self.block_size:
            raise VolumeSpecError(
                f"volume {self.name}: size {self.size} must be a positive multiple of the block "
                f"size {self.block_size}"
            )

    @property
    def blocks(self) -> int:
        return self.size // self.block_size

    def to_record(self, deleted: bool = False) -> dict[str, object]:
        return {
            "name": self.name,
            "size": self.size,
            "block_size": self.block_size,
            "group": self.group,
            "created_at": int(time.time() * 1000),
            "deleted": deleted,
        }

    @classmethod
    def from_record(cls, record: dict[str, object]) -> VolumeSpec:
        return cls(
            name=str(record["name"]),
            size=int(record["size"]),  # type: ignore[arg-type]
            block_size=int(record["block_size"]),  # type: ignore[arg-type]
            group=record.get("group"),  # type: ignore[arg-type]
        )


def publish_volume(clients: KafkaClients, topics: Topics, spec: VolumeSpec, deleted: bool = False) -> None:
    producer = clients.producer()
    value = None if deleted else default_codec().encode("Volume", spec.to_record())
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    producer.produce(topics.volumes, key=spec.name.encode(), value=value, on_delivery=on_delivery)
    remaining = producer.flush(30)
    if remaining or errors:
        raise KafkaError(
            f"could not register volume {spec.name} on {topics.volumes}: "
            f"{errors[0] if errors else 'not confirmed within 30 s'}; is the broker up?"
        )


def read_volumes(clients: KafkaClients, topics: Topics, timeout: float = 30.0) -> dict[str, VolumeSpec]:
    """Every registered volume: the compacted topic read from its start to its current end."""
    consumer = clients.consumer(f"tidemark-registry-{time.monotonic_ns()}", **{"enable.auto.offset.store": False})
    try:
        metadata = consumer.list_topics(topics.volumes, timeout=timeout)
        partitions = metadata.topics[topics.volumes].partitions
        if metadata.topics[topics.volumes].error is not None:
            raise KafkaError(
                f"volume registry topic {topics.volumes} is missing: run `tidemark topics create`"
            )
        ends: dict[int, int] = {}
        for p in partitions:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topics.volumes, p), timeout=timeout)
            if high > 0:
                ends[p] = high
        volumes: dict[str, VolumeSpec] = {}
        if not ends:
            return volumes
        consumer.assign([TopicPartition(topics.volumes, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaError(f"reading {topics.volumes}: {msg.error()}")
            _apply_registry_message(volumes, msg.key(), msg.value())
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
        if ends:
            raise KafkaError(f"timed out reading the volume registry {topics.volumes} after {timeout} s")
        return volumes
    except KafkaException as exc:
        raise KafkaError(f"reading the volume registry {topics.volumes}: {exc}") from exc
    finally:
        consumer.close()


def _apply_registry_message(volumes: dict[str, VolumeSpec], key: bytes | None, value: bytes | None) -> None:
    name = key.decode(errors="replace") if key else None
    if value is None:
        if name:
            volumes.pop(name, None)
        return
    try:
        _, record = default_codec().decode(value, expect="Volume")
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
            f"unknown volume {name!r} (registered: {known}); add it with "
            f"`tidemark volume add {name} --size BYTES`"
        )
    return volumes[name]
