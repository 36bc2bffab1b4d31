"""Kafka client construction: one place that turns settings into librdkafka clients."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka.admin import AdminClient

from .exceptions import KafkaAuthenticationError, NoBrokerError
from .log_repeats import RepeatFilter
from .settings import KafkaSettings, Settings

BOOTSTRAP_FILE = "bootstrap"

FETCH_WAIT_MAX_MS = 50
"""How long the broker may hold a consumer's fetch when nothing new is readable (librdkafka's
default is 500 ms). A read_committed consumer of a transactional topic (a mirror reading change
sets) is not always woken when a commit makes data readable, so the default added up to half a
second to the RPO lag; an idle consumer now sends up to 20 small fetches a second instead of 2."""

# librdkafka's own log lines go to Python logging (silent unless a command turns logging on), each
# kind at most once a minute with a count of its repeats (a connection refused is logged per client,
# broker thread and attempt).
_LIBRDKAFKA_LOG = logging.getLogger("tidemark.librdkafka")
_LIBRDKAFKA_LOG.addFilter(RepeatFilter())


def local_broker_dir(settings: Settings) -> Path:
    return settings.state_dir / "kafka"


def resolve_bootstrap(settings: Settings, kafka: KafkaSettings) -> str:
    """`TIDEMARK_BOOTSTRAP` if set, else the address the local broker wrote when it started."""
    if kafka.bootstrap:
        return kafka.bootstrap
    recorded = local_broker_dir(settings) / BOOTSTRAP_FILE
    if recorded.is_file():
        return recorded.read_text().strip()
    raise NoBrokerError(
        "no Kafka cluster configured: set TIDEMARK_BOOTSTRAP=host:port, "
        f"or start the local broker with `tidemark kafka start` (state directory {settings.state_dir})"
    )


class KafkaClients:
    """Factory for producers, consumers and admin clients with the project's defaults."""

    def __init__(self, settings: Settings, kafka: KafkaSettings, bootstrap: str | None = None) -> None:
        self.settings = settings
        self.kafka = kafka
        self.bootstrap = bootstrap or resolve_bootstrap(settings, kafka)
        self._auth_failure: str | None = None
        self._lock = threading.Lock()

    def _base(self) -> dict[str, Any]:
        return self.kafka.client_config(self.bootstrap) | {
            "logger": _LIBRDKAFKA_LOG,
            "error_cb": self._on_error,
        }

    def _on_error(self, error: RdKafkaError) -> None:
        if error.code() in (RdKafkaError._AUTHENTICATION, RdKafkaError.SASL_AUTHENTICATION_FAILED):
            with self._lock:
                self._auth_failure = error.str()
        _LIBRDKAFKA_LOG.debug("client error: %s", error)

    def probe(self, timeout: float = 10.0) -> None:
        """Fail fast and clearly on refused credentials; an unreachable cluster is not an error here
        (trackers keep working while Kafka is down)."""
        admin = self.admin()
        with contextlib.suppress(KafkaException):
            admin.list_topics(timeout=timeout)
        admin.poll(0.5)  # serves error_cb
        if self._auth_failure is not None:
            user = self.kafka.sasl_username or "(none)"
            raise KafkaAuthenticationError(
                f"Kafka at {self.bootstrap} refused authentication for user {user!r} "
                f"({self.kafka.security_protocol}, {self.kafka.sasl_mechanism}): {self._auth_failure}; "
                "check TIDEMARK_SASL_USERNAME, TIDEMARK_SASL_PASSWORD and TIDEMARK_SASL_MECHANISM"
            )

    def producer(self, **overrides: Any) -> Producer:
        """Idempotent, acks=all: a delivered message is on every in-sync replica, in order."""
        config = self._base() | {
            "enable.idempotence": True,
            "acks": "all",
            "message.max.bytes": self.settings.message_max_bytes,
            "linger.ms": 2,
            "compression.type": "none",
        }
        config.update(overrides)
        return Producer(config)

    def consumer(self, group_id: str, **overrides: Any) -> Consumer:
        config = self._base() | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.message.max.bytes": self.settings.message_max_bytes,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
        }
        config.update(overrides)
        return Consumer(config)

    def admin(self) -> AdminClient:
        return AdminClient(self._base())
