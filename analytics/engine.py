"""What the analytics app does with each message, over plain mutable mappings (faust tables in
the app, dicts in unit tests): no Kafka here.

Stores (key -> JSON value):
- `volumes`:  volume -> VolumeAnalytics (open window, detector, pending raise)
- `windows`:  volume -> the last `windows_kept` closed window summaries, oldest first
- `points`:   volume -> the last `points_kept` recovery point headers (rp_id, seq, created_at, ...)
- `mirrors`:  "site/volume" -> MirrorView
- `dead`:     subject -> DeadLetterWatch
- `registry`: volume -> {"size", "block_size"} from the volumes topic

Every handler takes the message timestamp (ms) as "now" and returns the Alert records to publish.
Ticks (key `__tidemark_tick__`) on a writes partition advance the clock of that partition's
volumes, closing their windows while they are idle, and let pending raises progress. The last
`RECENT_ALERTS` alerts stay in memory for the dashboard; the alerts topic is their record.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from tidemark.core.partitioning import volume_partition
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError
from tidemark.schemas.topic_records import Topic, record_type_on

from .alerts import NO_VOLUME
from .deadletters import DeadLetterWatch, advance, on_dead_letter
from .encryption_alerts import flush_pending, on_transitions
from .mirrors import MirrorView, on_status
from .settings import AnalyticsSettings
from .volume import Closed, VolumeAnalytics, VolumeFold

log = logging.getLogger(__name__)

TICK_KEY = b"__tidemark_tick__"
POINT_FIELDS = ("rp_id", "seq", "created_at", "kind", "label", "block_count", "changed_bytes", "generation")
FLUSH_EVERY = 500
RECENT_ALERTS = 500
Store = MutableMapping[str, Any]
Alert = dict[str, Any]


@dataclass
class Stores:
    volumes: Store
    windows: Store
    points: Store
    mirrors: Store
    dead: Store
    registry: Store


class Engine:
    """The analytics state machine. Each store is written only while an event of its own source
    topic is handled: `volumes` and `windows` by the journal reader (state topics, see
    state_topic.py; the working state lives in memory and is flushed on that partition's ticks,
    every `FLUSH_EVERY` events and before the reader commits), `points`, `mirrors`, `dead` and
    `registry` by their faust agents (faust's RocksDB store writes a key into the partition of
    the event being handled).
    Dead-letter episodes end on the app's clock (the newest message time seen), in memory.
    A store read while another topic's event is handled (`registry`, `points`, `mirrors`, and
    `windows` by the web views) is read through `cached`: faust's RocksDB store looks a key up in
    the partition of the event being handled, which is not the partition it was written in."""

    def __init__(
        self, settings: AnalyticsSettings, stores: Stores, writes_partitions: int,
        restored: dict[str, dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        """`restored`: store name -> its content, when the caller read the stores back itself."""
        self.s = settings
        self._restored = restored or {}
        self.stores = stores
        self.fold = VolumeFold(settings)
        self.codec = default_codec()
        self.writes_partitions = writes_partitions
        self.skipped = 0
        self.clock_ms = 0
        self.recent: deque[Alert] = deque(maxlen=RECENT_ALERTS)
        self._live: dict[str, VolumeAnalytics] | None = None
        self._dirty: set[str] = set()
        self._unflushed = [0] * writes_partitions
        self._dead: dict[str, DeadLetterWatch] | None = None
        self._cache: dict[str, dict[str, Any]] = {}

    # -- the writes journal ----------------------------------------------------------------------
    def on_writes(self, key: bytes | None, value: bytes | None, partition: int, now: int) -> list[Alert]:
        """One message of the writes topic (a BlockWrite, a Marker or a tick), in partition order."""
        self.clock_ms = max(self.clock_ms, now)
        alerts: list[Alert] = []
        if key == TICK_KEY:
            for state in self._volumes_of(partition):
                alerts += self._closed(state, self.fold.advance(state, now), now)
                alerts += flush_pending(state, self._points(state.volume), now, self.s, force=False)
            self.flush(partition)
            return self._remember(alerts)
        record = self._decode(value, Topic.WRITES, "BlockWrite")
        if record is None:
            return []
        state = self._state(record["volume"])
        alerts += self._closed(state, self.fold.on_write(state, record, now), now)
        self._dirty.add(state.volume)
        self._unflushed[partition] += 1
        if self._unflushed[partition] >= FLUSH_EVERY:
            self.flush(partition)
        return self._remember(alerts)

    def flush(self, partition: int) -> None:
        """Write the working state of this partition's changed volumes to the stores."""
        for volume in sorted(self._dirty):
            if volume_partition(volume, self.writes_partitions) == partition:
                self.stores.volumes[volume] = self.live[volume].to_json()
                self._dirty.discard(volume)
        self._unflushed[partition] = 0

    def flush_all(self) -> None:
        """Write the working state of every changed volume to the stores (before a commit)."""
        for partition in range(self.writes_partitions):
            self.flush(partition)

    @property
    def live(self) -> dict[str, VolumeAnalytics]:
        if self._live is None:
            self._live = {v: VolumeAnalytics.from_json(raw) for v, raw in self._contents("volumes").items()}
        return self._live

    def _state(self, volume: str) -> VolumeAnalytics:
        state = self.live.get(volume)
        if state is None:
            state = self.live[volume] = VolumeAnalytics(volume)
        spec = self.cached("registry").get(volume)
        if spec:
            state.size, state.block_size = spec["size"], spec["block_size"]
        return state

    def _volumes_of(self, partition: int) -> list[VolumeAnalytics]:
        return [self._state(v) for v in sorted(self.live) if volume_partition(v, self.writes_partitions) == partition]

    def _closed(self, state: VolumeAnalytics, closed: Closed, now: int) -> list[Alert]:
        if closed.summaries:
            kept = list(self.cached("windows").get(state.volume) or []) + closed.summaries
            self._put("windows", state.volume, kept[-self.s.windows_kept :])
            self._dirty.add(state.volume)
        if not closed.transitions:
            return []
        self._dirty.add(state.volume)
        return on_transitions(state, closed.transitions, self._points(state.volume), now, self.s)

    def _points(self, volume: str) -> list[dict[str, Any]]:
        return list(self.cached("points").get(volume) or [])

    def cached(self, store: str) -> dict[str, Any]:
        """An in-memory copy of a store (loaded once, then written through by its handler)."""
        found = self._cache.get(store)
        if found is None:
            found = self._cache[store] = self._contents(store)
        return found

    def _contents(self, store: str) -> dict[str, Any]:
        restored = self._restored.pop(store, None)
        return dict(restored) if restored is not None else dict(getattr(self.stores, store).items())

    def _put(self, store: str, key: str, value: Any) -> None:
        self.cached(store)[key] = value
        getattr(self.stores, store)[key] = value

    # -- recovery points, mirrors, dead letters, the registry ------------------------------------
    def on_point(self, value: bytes | None, now: int) -> None:
        self.clock_ms = max(self.clock_ms, now)
        record = self._decode(value, Topic.RECOVERY_POINTS, "RecoveryPoint")
        if record is None:
            return
        kept = [p for p in self._points(record["volume"]) if p["rp_id"] != record["rp_id"]]
        kept.append({name: record[name] for name in POINT_FIELDS})
        kept.sort(key=lambda p: p["rp_id"])
        self._put("points", record["volume"], kept[-self.s.points_kept :])

    def on_mirror_status(self, value: bytes | None, now: int) -> list[Alert]:
        self.clock_ms = max(self.clock_ms, now)
        record = self._decode(value, Topic.MIRROR_STATUS, "MirrorStatus")
        if record is None:
            return []
        key = f"{record['site']}/{record['volume']}"
        raw = self.cached("mirrors").get(key)
        view = MirrorView.from_json(raw) if raw else MirrorView(record["site"], record["volume"])
        alerts = on_status(view, record, self.s, self.s.windows_kept)
        self._put("mirrors", key, view.to_json())
        return self._remember(alerts)

    def on_dead_letter(self, value: bytes | None, now: int) -> list[Alert]:
        self.clock_ms = max(self.clock_ms, now)
        record = self._decode(value, Topic.DEAD_LETTERS, "DeadLetter")
        if record is None:
            return []
        subject = record["volume"] or NO_VOLUME
        watch = self.dead.setdefault(subject, DeadLetterWatch(subject))
        alerts = on_dead_letter(watch, now, f"{record['stage']}: {record['reason']}", self.s)
        self.stores.dead[subject] = watch.to_json()
        return self._remember(alerts)

    @property
    def dead(self) -> dict[str, DeadLetterWatch]:
        if self._dead is None:
            self._dead = {k: DeadLetterWatch.from_json(raw) for k, raw in self._contents("dead").items()}
        return self._dead

    def advance_dead_letters(self) -> list[Alert]:
        """Close dead-letter windows up to the app's clock (kept in memory until the next one)."""
        alerts: list[Alert] = []
        for watch in self.dead.values():
            alerts += advance(watch, self.clock_ms, self.s)
        return self._remember(alerts)

    def on_volume(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key:
                self.cached("registry").pop(key.decode(errors="replace"), None)
                self.stores.registry.pop(key.decode(errors="replace"), None)
            return
        record = self._decode(value, Topic.VOLUMES, "Volume")
        if record is not None:
            self._put("registry", record["name"], {"size": record["size"], "block_size": record["block_size"]})

    # -- helpers -----------------------------------------------------------------------------------
    def _decode(self, value: bytes | None, topic: Topic, wanted: str) -> dict[str, Any] | None:
        """The record when it is a `wanted`; None for the topic's other record types, and None counted
        in `skipped` for an empty value or one that does not belong on `topic` or does not decode."""
        if not value:
            self.skipped += 1
            return None
        try:
            if record_type_on(topic, value, self.codec) != wanted:
                return None
            decoded: dict[str, Any] = self.codec.decode(value)[1]
            return decoded
        except DecodeError as exc:
            # The stage that owns the topic dead-letters bad input; analytics only reads it.
            self.skipped += 1
            log.debug("analytics skipped an event: %s", exc)
            return None

    def _remember(self, alerts: list[Alert]) -> list[Alert]:
        self.recent.extend(alerts)
        return alerts
