"""Markers parked while the tracker is AHEAD, kept durably until Kafka confirmed them.

A FLUSH or requested point taken during an outage must survive a restart of the tracker as the
dirty blocks do. The file is a JSON array of `[kind, label]` pairs in the order the markers were
taken, replaced durably (temp file, fsync, rename) whenever a marker is parked or confirmed;
markers are rare, so this costs nothing on the write path. A restarted tracker parks them again,
before any marker of its own, so they are published after its drain, in their order.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tidemark.core.durable import read_or, write_durably

from .exceptions import TrackerError


class ParkedMarkers:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._held: dict[int, tuple[str, str | None]] = {}  # ticket -> (kind, label), in ticket order
        self._lock = threading.Lock()

    def load(self) -> list[tuple[str, str | None]]:
        """The markers a previous tracker parked and never saw confirmed, in order."""
        raw = read_or(self.path, b"[]")
        try:
            return [(str(kind), None if label is None else str(label)) for kind, label in json.loads(raw)]
        except (ValueError, TypeError) as exc:
            raise TrackerError(
                f"parked markers file {self.path} is corrupt ({exc}); move it away to start without them"
            ) from exc

    def hold(self, ticket: int, kind: str, label: str | None) -> None:
        with self._lock:
            self._held[ticket] = (kind, label)
            self._save()

    def confirmed(self, ticket: int) -> None:
        with self._lock:
            if self._held.pop(ticket, None) is not None:
                self._save()

    def _save(self) -> None:
        ordered = [list(self._held[ticket]) for ticket in sorted(self._held)]
        write_durably(self.path, json.dumps(ordered).encode())
