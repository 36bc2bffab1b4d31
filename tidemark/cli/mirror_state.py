"""Publishing a mirror's new state after a CLI operation changed it (failover, failback, revert)."""

from __future__ import annotations

from rich.console import Console

from tidemark.sinks.status import publish_status, status_record
from tidemark.sinks.storage.progress import Progress

from .context import AppContext


def publish_mirror_state(app_ctx: AppContext, progress: Progress, out: Console) -> None:
    """MirrorStatus of the new state; a broker that is down does not undo what was done."""
    try:
        producer = app_ctx.clients.producer()
        publish_status(producer, app_ctx.topics, status_record(progress, 0, 0.0))
        if producer.flush(15) > 0:
            out.print(f"warning: MirrorStatus not delivered to {app_ctx.topics.mirror_status} (is Kafka up?)")
    except Exception as exc:  # confluent_kafka raises KafkaException; the state change is already durable
        out.print(f"warning: cannot publish MirrorStatus to {app_ctx.topics.mirror_status}: {exc}")
