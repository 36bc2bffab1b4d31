"""Creates the topics of the design with their settings, idempotently.

Replication follows the cluster: factor min(3, live brokers) unless `TIDEMARK_REPLICATION_FACTOR`
is set, and `min.insync.replicas` min(2, factor), so with acks=all a write acknowledged on a
three-broker cluster is on two brokers at least, and one broker may fail without stopping writes.
The journal uses the broker's clock (`message.timestamp.type=LogAppendTime`): the processor's
"now" is the message timestamp, so a producer whose clock is off cannot move seals or points.
"""

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
CREATE_ATTEMPTS = 3
CREATE_RETRY_S = 1.0
CREATE_RETRIABLE = frozenset(
    {LibKafkaError._DESTROY_BROKER, LibKafkaError._TRANSPORT, LibKafkaError._TIMED_OUT, LibKafkaError._ALL_BROKERS_DOWN}
)
"""Errors of a creation request that say nothing about the topic: sent again (a fault run's fresh
three-node cluster dropped the admin client's connection, _DESTROY_BROKER, while creating)."""
MAX_REPLICATION = 3
MAX_MIN_INSYNC = 2


@dataclass(frozen=True)
class Replication:
    """Copies of each partition, and how many must be in sync for an acks=all write to succeed."""

    factor: int
    min_insync: int


def replication_for(brokers: int, requested: int | None = None) -> Replication:
    """`requested` copies, else min(3, brokers); at most two of them required in sync."""
    factor = requested or min(MAX_REPLICATION, brokers)
    return Replication(factor, min(MAX_MIN_INSYNC, factor))


def cluster_replication(clients: KafkaClients, settings: Settings, timeout: float = 10.0) -> Replication:
    """The replication for topics on this cluster, counting its live brokers in the metadata."""
    try:
        brokers = len(clients.admin().list_topics(timeout=timeout).brokers)
    except KafkaException as exc:
        raise KafkaError(
            f"cannot read the metadata of {clients.bootstrap}: {exc.args[0]}; is the broker running "
            "(`tidemark kafka status`) or TIDEMARK_BOOTSTRAP right?"
        ) from exc
    requested = settings.replication_factor if "replication_factor" in settings.model_fields_set else None
    if requested is not None and requested > brokers:
        raise KafkaError(
            f"TIDEMARK_REPLICATION_FACTOR={requested} but {clients.bootstrap} has {brokers} live broker(s); "
            "lower it, or unset it to use min(3, brokers)"
        )
    return replication_for(brokers, requested)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(topics: Topics, settings: Settings, replication: Replication) -> list[TopicSpec]:
    """Every topic of the design with partitions, replication and configs.

    Every topic accepts messages up to `message_max_bytes`, the same limit the producers use, so
    an event the codec may emit is never refused by one topic and accepted by another.
    """
    common = {
        "max.message.bytes": str(settings.message_max_bytes),
        "min.insync.replicas": str(replication.min_insync),
    }
    writes = {"retention.ms": str(settings.writes_retention_ms), "message.timestamp.type": "LogAppendTime"}
    special: dict[str, tuple[int, dict[str, str]]] = {
        topics.volumes: (1, {"cleanup.policy": "compact"}),
        topics.tracker_checkpoints: (1, {"cleanup.policy": "compact"}),
        topics.read_profiles: (1, {"cleanup.policy": "compact"}),
        topics.mirror_status: (1, {}),
        topics.writes: (settings.partitions, writes),
    }
    specs = []
    for name in topics.all():
        partitions, extra = special.get(name, (settings.partitions, {}))
        specs.append(TopicSpec(name, partitions, replication.factor, common | extra))
    return specs


def ensure_topics(clients: KafkaClients, topics: Topics, settings: Settings) -> list[str]:
    """Create every missing topic and wait for it; returns the names that were created now.

    Existing topics are left as they are, whatever their replication or configs.
    """
    return create_topics(clients, topic_specs(topics, settings, cluster_replication(clients, settings)))


def create_topics(clients: KafkaClients, specs: list[TopicSpec]) -> list[str]:
    """Create the missing topics of `specs` and wait for them; returns the names created now.

    A request that fails on the way (`CREATE_RETRIABLE`: a cluster just started may drop a
    connection while it settles) is sent again for the topics it left, up to `CREATE_ATTEMPTS`
    times; creating is idempotent, a topic that exists by then is left as it is."""
    created: list[str] = []
    remaining = list(specs)
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        remaining = _create_once(clients, remaining, created, last=attempt == CREATE_ATTEMPTS)
        if not remaining:
            break
        time.sleep(CREATE_RETRY_S)
    _wait_visible(clients, [s.name for s in specs])
    return sorted(created)


def _create_once(clients: KafkaClients, specs: list[TopicSpec], created: list[str], *, last: bool) -> list[TopicSpec]:
    """One creation request; appends the topics created to `created`, returns those to ask again."""
    new = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication_factor, config=s.config)
        for s in specs
    ]
    admin = clients.admin()
    try:
        futures = admin.create_topics(new, operation_timeout=CREATE_TIMEOUT_S, request_timeout=CREATE_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaError(f"cannot create topics on {clients.bootstrap}: {exc.args[0]}") from exc
    by_name = {s.name: s for s in specs}
    again: list[TopicSpec] = []
    for name, future in futures.items():
        try:
            future.result(timeout=CREATE_TIMEOUT_S + 5)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            code = error.code() if isinstance(error, LibKafkaError) else None
            if code == LibKafkaError.TOPIC_ALREADY_EXISTS:
                continue
            if code in CREATE_RETRIABLE and not last:
                again.append(by_name[name])
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
    return again


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
