"""The volume registry as the processor sees it: read once, re-read on a miss (rate-limited)."""

from __future__ import annotations

import time

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec, read_volumes


class RegistryCache:
    def __init__(self, clients: KafkaClients, topics: Topics, refresh_after: float = 2.0) -> None:
        self.clients = clients
        self.topics = topics
        self.refresh_after = refresh_after
        self._volumes: dict[str, VolumeSpec] = {}
        self._read_at = float("-inf")

    def get(self, name: str) -> VolumeSpec | None:
        spec = self._volumes.get(name)
        if spec is None and time.monotonic() - self._read_at >= self.refresh_after:
            self._volumes = read_volumes(self.clients, self.topics)
            self._read_at = time.monotonic()
            spec = self._volumes.get(name)
        return spec
