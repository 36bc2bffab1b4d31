"""`tidemark analytics` as a faust-streaming app: its own consumer group (the app id), RocksDB
tables (rocksdict), one agent per small input topic, a timer, Alert events out, and a web server
for the dashboard, its JSON and /metrics. The writes journal, where every message carries a
write's data, is read by the journal reader (journal.py, its own group `<app id>-journal`) as a
task of the app, on the same event loop; its stores are logged to state topics (state_topic.py).

At-least-once: faust commits offsets after the agents handled the events, the journal reader
after its state and alerts were delivered; after a crash the events since the last commit are
handled again, so an alert may be published twice under the same alert_id (consumers dedupe by
it). The exactly-once folding stays in `tidemark process` (see the README: faust picks the
transactional producer by the destination partition).

Scaling: one worker reads every partition. Stores are keyed so a store is only written while
an event of its own source topic is handled (engine.py); the dashboard of a worker shows the
volumes of the partitions it holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from tidemark.core.kafka import KafkaClients
from tidemark.core.kafka_io import topic_partitions
from tidemark.core.partitioning import volume_partition
from tidemark.core.settings import Settings
from tidemark.core.topic_admin import cluster_replication, create_topics, topic_specs
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec

from .alerts import NO_VOLUME
from .engine import RECENT_ALERTS, Engine, Stores
from .history import read_changelog, recent_alerts, unread_ends
from .journal import FETCH_OVERRIDES, DeliveryWatch, JournalReader
from .metrics import AnalyticsMetrics
from .settings import AnalyticsSettings
from .state_topic import TopicStore, changelog_topic, ensure_state_topic
from .views import register_views

log = logging.getLogger(__name__)

CREATE_TIMEOUT_S = 30.0
TABLES = ("points", "mirrors", "dead", "registry")
JOURNAL_STORES = ("volumes", "windows")


@dataclass(frozen=True)
class Inputs:
    """The partitions of every topic the app reads, and of the alerts topic it writes."""

    writes: int
    points: int
    mirror_status: int
    dead_letters: int
    volumes: int
    alerts: int


def prepare_topics(clients: KafkaClients, topics: Topics, settings: Settings) -> Inputs:
    """Create `<prefix>.alerts` when missing; return every topic's partition count.

    Raises TopicMissingError naming the topic when an input topic does not exist yet.
    """
    admin = clients.admin()
    name = topics.alerts
    if name not in admin.list_topics(timeout=CREATE_TIMEOUT_S).topics:
        replication = cluster_replication(clients, settings)
        create_topics(clients, [s for s in topic_specs(topics, settings, replication) if s.name == name])

    def partitions(topic: str) -> int:
        return len(topic_partitions(admin, topic, CREATE_TIMEOUT_S))

    return Inputs(
        partitions(topics.writes), partitions(topics.recovery_points), partitions(topics.mirror_status),
        partitions(topics.dead_letters), partitions(topics.volumes), partitions(name),
    )  # fmt: skip


def build_app(
    settings: AnalyticsSettings, topics: Topics, inputs: Inputs, clients: KafkaClients, datadir: Path
) -> tuple[faust.App, Engine]:
    """The faust app with its agents, tables and web views (not started)."""
    app = faust.App(
        f"{topics.prefix}.{settings.app_id}",
        broker=[f"kafka://{server}" for server in clients.bootstrap.split(",")],
        store="rocksdb://",
        datadir=str(datadir),
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host=settings.web_bind,
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=1,
        topic_partitions=inputs.writes,
        table_cleanup_interval=60.0,
    )

    def table(name: str, partitions: int) -> Any:
        return app.Table(name, default=None, partitions=partitions, key_type=str, value_type=None)

    names = {name: changelog_topic(app.conf.id, name) for name in TABLES + JOURNAL_STORES}
    for name in JOURNAL_STORES:
        ensure_state_topic(clients, clients.settings, names[name], inputs.writes)
    restored = {name: read_changelog(clients, topic) for name, topic in names.items()}
    log.info("restored from the changelogs: %s", {name: len(found) for name, found in restored.items()})
    undelivered = DeliveryWatch()
    producer = clients.producer(on_delivery=undelivered, **{"delivery.report.only.error": True})

    def journal_store(name: str) -> TopicStore:
        return TopicStore(producer, names[name], inputs.writes, restored[name])

    stores = Stores(
        volumes=journal_store("volumes"),
        windows=journal_store("windows"),
        points=table("points", inputs.points),
        mirrors=table("mirrors", inputs.mirror_status),
        dead=table("dead", inputs.dead_letters),
        registry=table("registry", inputs.volumes),
    )
    engine = Engine(settings, stores, inputs.writes, restored)
    engine.recent.extend(recent_alerts(clients, topics.alerts, inputs.alerts, RECENT_ALERTS))
    metrics = AnalyticsMetrics()
    codec = default_codec()

    def announce(alert: dict[str, Any]) -> tuple[bytes, bytes, int]:
        """Log and count an alert; its message: key, value and partition on the alerts topic."""
        log.warning("%s %s: %s", alert["kind"], alert["state"], alert["message"])
        metrics.alert(alert)
        subject = alert["volume"] or NO_VOLUME
        return subject.encode(), codec.encode("Alert", alert), volume_partition(subject, inputs.alerts)

    def raw(name: str, partitions: int | None = None) -> Any:
        """A topic of raw bytes: keys and values are decoded by the engine (the one codec)."""
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=partitions
        )

    out = raw(topics.alerts, inputs.alerts)

    async def publish(alerts: list[dict[str, Any]]) -> None:
        """The alerts of a faust agent or timer, sent by faust's producer (flushed before its commits)."""
        for alert in alerts:
            key, value, partition = announce(alert)
            await out.send(key=key, value=value, partition=partition)

    def publish_journal(alerts: list[dict[str, Any]]) -> None:
        """The alerts of the journal reader, sent by its producer (flushed before its commits)."""
        for alert in alerts:
            key, value, partition = announce(alert)
            producer.produce(topics.alerts, key=key, value=value, partition=partition)

    journal = JournalReader(
        clients.consumer(f"{app.conf.id}-journal", **FETCH_OVERRIDES), producer, topics.writes, engine,
        publish_journal, metrics, settings.commit_interval_s, undelivered,
    )  # fmt: skip

    # The points present now and not handled yet: the journal waits until the points agent has.
    points_ends = unread_ends(clients, topics.recovery_points, inputs.points, app.conf.id)
    points_seen: dict[int, int] = {}

    def points_read() -> bool:
        return all(points_seen.get(p, 0) >= end - 1 for p, end in points_ends.items())

    @app.task  # type: ignore[untyped-decorator]
    async def read_journal() -> None:
        """The journal reader for the app's lifetime; its failure stops the app (exit code 1)."""
        try:
            await journal.run(points_read)
        except Exception as exc:
            log.exception("the journal reader of %s failed", topics.writes)
            await app.crash(exc)

    @app.agent(raw(topics.recovery_points), name="points")
    async def points(stream: Any) -> None:
        async for event in stream.events():
            engine.on_point(event.value, int(event.message.timestamp * 1000))
            points_seen[event.message.partition] = event.message.offset + 1

    @app.agent(raw(topics.mirror_status), name="mirrors")
    async def mirrors(stream: Any) -> None:
        async for event in stream.events():
            await publish(engine.on_mirror_status(event.value, int(event.message.timestamp * 1000)))

    @app.agent(raw(topics.dead_letters), name="dead-letters")
    async def dead_letters(stream: Any) -> None:
        async for event in stream.events():
            await publish(engine.on_dead_letter(event.value, int(event.message.timestamp * 1000)))

    @app.agent(raw(topics.volumes), name="registry")
    async def registry(stream: Any) -> None:
        async for event in stream.events():
            engine.on_volume(event.key, event.value)

    @app.timer(interval=settings.window_s)  # type: ignore[untyped-decorator]
    async def dead_letter_windows() -> None:
        await publish(engine.advance_dead_letters())
        metrics.refresh(engine)

    register_views(app, engine, metrics)
    return app, engine
