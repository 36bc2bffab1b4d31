"""What every command needs: settings (environment + global flags) and lazily built Kafka clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from tidemark.core.kafka import KafkaClients
from tidemark.core.settings import KafkaSettings, Settings
from tidemark.core.topics import Topics


@dataclass
class AppContext:
    settings: Settings
    kafka: KafkaSettings
    _clients: KafkaClients | None = field(default=None, repr=False)

    @property
    def topics(self) -> Topics:
        return Topics(self.settings.topic_prefix)

    @property
    def clients(self) -> KafkaClients:
        if self._clients is None:
            clients = KafkaClients(self.settings, self.kafka)
            if self.kafka.sasl_mechanism or self.kafka.security_protocol != "PLAINTEXT":
                clients.probe()
            self._clients = clients
        return self._clients


def build_context(state_dir: Path | None, bootstrap: str | None, topic_prefix: str | None) -> AppContext:
    overrides: dict[str, Any] = {}  # pydantic validates them as the flags' values
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    if topic_prefix is not None:
        overrides["topic_prefix"] = topic_prefix
    settings = Settings(**overrides)
    kafka = KafkaSettings(bootstrap=bootstrap) if bootstrap else KafkaSettings()
    return AppContext(settings, kafka)


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext), "the root callback sets the context"
    return obj
