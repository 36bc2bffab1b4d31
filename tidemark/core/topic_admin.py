"""Creates the topics of the design with their settings, idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError as LibKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from .exceptions import KafkaError
from .kafka import KafkaClients
from .settings import Settings
from .topics import Topics

CREATE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(topics: Topics, settings: Settings) -> list[TopicSpec]:
    """Every topic of the design with partitions and configs.

    Every topic accepts messages up to `message_max_bytes`, the same limit the producers use, so
    an event the codec may emit is never refused by one topic and accepted by another.
    """
    common = {"max.message.bytes": str(settings.message_max_bytes)}
    special: dict[str, tuple[int, dict[str, str]]] = {
        topics.volumes: (1, {"cleanup.policy": "compact"}),
        topics.mirror_status: (1, {}),
        topics.writes: (settings.partitions, {"retention.ms": str(settings.writes_retention_ms)}),
    }
    specs = []
    for name in topics.all():
        partitions, extra = special.get(name, (settings.partitions, {}))
        specs.append(TopicSpec(name, partitions, common | extra))
    return specs


def ensure_topics(clients: KafkaClients, topics: Topics, settings: Settings) -> list[str]:
    """Create every missing topic and wait for it; returns the names that were created now."""
    specs = topic_specs(topics, settings)
    new = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=settings.replication_factor,
                 config=s.config)
        for s in specs
    ]  # fmt: skip
    admin = clients.admin()
    try:
        futures = admin.create_topics(
            new, operation_timeout=CREATE_TIMEOUT_S, request_timeout=CREATE_TIMEOUT_S
        )
    except KafkaException as exc:
        raise KafkaError(f"cannot create topics on {clients.bootstrap}: {exc.args[0]}") from exc
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=CREATE_TIMEOUT_S + 5)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, LibKafkaError) and error.code() == LibKafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise KafkaError(
                f"cannot create topic {name} on {clients.bootstrap}: {error}; check the broker is "
                "reachable (TIDEMARK_BOOTSTRAP) and that TIDEMARK_REPLICATION_FACTOR and "
                "TIDEMARK_MESSAGE_MAX_BYTES fit the cluster"
            ) from exc
        except TimeoutError as exc:
            raise KafkaError(
                f"creating topic {name} on {clients.bootstrap} timed out after {CREATE_TIMEOUT_S:.0f} s"
            ) from exc
    _wait_visible(clients, [s.name for s in specs])
    return sorted(created)


def _wait_visible(clients: KafkaClients, names: list[str]) -> None:
    """The controller answered; wait until the broker's metadata has a leader for every partition."""
    deadline = time.monotonic() + CREATE_TIMEOUT_S
    admin = clients.admin()
    while True:
        try:
            metadata = admin.list_topics(timeout=5.0).topics
        except KafkaException:
            metadata = {}
        missing = [
            n for n in names
            if n not in metadata or metadata[n].error is not None
            or any(p.leader < 0 for p in metadata[n].partitions.values())
        ]  # fmt: skip
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise KafkaError(
                f"topics {', '.join(missing)} were created on {clients.bootstrap} but have no leader "
                f"after {CREATE_TIMEOUT_S:.0f} s; check the broker's log"
            )
        time.sleep(0.1)


def list_topics(clients: KafkaClients, timeout: float = 10.0) -> dict[str, int]:
    """Topic name -> partition count, internal topics excluded."""
    try:
        metadata = clients.admin().list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaError(
            f"cannot list topics on {clients.bootstrap}: {exc.args[0]}; is the broker running "
            "(`tidemark kafka status`) or TIDEMARK_BOOTSTRAP right?"
        ) from exc
    return {name: len(t.partitions) for name, t in metadata.topics.items() if not name.startswith("__")}
