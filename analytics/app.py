"""`tidemark analytics` as a faust-streaming app: its own consumer group (the app id), RocksDB
tables (rocksdict), one agent per input topic, Alert events out, and a web server for the
dashboard, its JSON and /metrics.

At-least-once: faust commits offsets after the agents handled the events; after a crash the
events since the last commit are handled again, so an alert may be published twice under the
same alert_id (consumers dedupe by it). The exactly-once folding stays in `tidemark process`
(see the README: faust picks the transactional producer by the destination partition).

Scaling: one worker reads every partition. Stores are keyed so a table is only written while
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
from tidemark.core.partitioning import volume_partition
from tidemark.core.settings import Settings
from tidemark.core.topic_admin import cluster_replication, create_topics, topic_specs
from tidemark.core.topics import Topics
from tidemark.schemas.codec import default_codec

from .alerts import NO_VOLUME
from .engine import RECENT_ALERTS, Engine, Stores
from .exceptions import AnalyticsError
from .history import read_changelog, recent_alerts
from .metrics import AnalyticsMetrics
from .settings import AnalyticsSettings
from .views import register_views

log = logging.getLogger(__name__)

CREATE_TIMEOUT_S = 30.0
FETCH_BYTES = 32 << 20
POLL_RECORDS = 2000
STORES = ("volumes", "windows", "points", "mirrors", "dead", "registry")


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

    Raises AnalyticsError naming the topic when an input topic does not exist yet.
    """
    admin = clients.admin()
    name = topics.alerts
    metadata = admin.list_topics(timeout=CREATE_TIMEOUT_S)
    if name not in metadata.topics:
        replication = cluster_replication(clients, settings)
        create_topics(clients, [s for s in topic_specs(topics, settings, replication) if s.name == name])
        metadata = admin.list_topics(timeout=CREATE_TIMEOUT_S)

    def partitions(topic: str) -> int:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise AnalyticsError(
                f"topic {topic} does not exist on {clients.bootstrap}; create the topics first with "
                "`tidemark topics create` (same TIDEMARK_TOPIC_PREFIX)"
            )
        return len(found.partitions)

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
        # 64 KiB writes: a fetch of faust's default 1 MiB per partition holds 16 of them, and
        # the fetch round trips, not the handling, then bound the rate.
        consumer_max_fetch_size=FETCH_BYTES,
        broker_max_poll_records=POLL_RECORDS,
    )

    def table(name: str, partitions: int) -> Any:
        return app.Table(name, default=None, partitions=partitions, key_type=str, value_type=None)

    stores = Stores(
        volumes=table("volumes", inputs.writes),
        windows=table("windows", inputs.writes),
        points=table("points", inputs.points),
        mirrors=table("mirrors", inputs.mirror_status),
        dead=table("dead", inputs.dead_letters),
        registry=table("registry", inputs.volumes),
    )

    restored = {name: read_changelog(clients, f"{app.conf.id}-{name}-changelog") for name in STORES}
    log.info("restored from the changelogs: %s", {name: len(found) for name, found in restored.items()})
    engine = Engine(settings, stores, inputs.writes, restored)
    engine.recent.extend(recent_alerts(clients, topics.alerts, inputs.alerts, RECENT_ALERTS))
    metrics = AnalyticsMetrics()
    codec = default_codec()

    def raw(name: str, partitions: int | None = None) -> Any:
        """A topic of raw bytes: keys and values are decoded by the engine (the one codec)."""
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=partitions
        )

    out = raw(topics.alerts, inputs.alerts)

    async def publish(alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            log.warning("%s %s: %s", alert["kind"], alert["state"], alert["message"])
            subject = alert["volume"] or NO_VOLUME
            await out.send(
                key=subject.encode(), value=codec.encode("Alert", alert),
                partition=volume_partition(subject, inputs.alerts),
            )  # fmt: skip
            metrics.alert(alert)

    @app.agent(raw(topics.writes), name="writes")
    async def writes(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            alerts = engine.on_writes(event.key, event.value, message.partition, int(message.timestamp * 1000))
            metrics.seen("writes", message.timestamp)
            await publish(alerts)

    @app.agent(raw(topics.recovery_points), name="points")
    async def points(stream: Any) -> None:
        async for event in stream.events():
            engine.on_point(event.value, int(event.message.timestamp * 1000))

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
