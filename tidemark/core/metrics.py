"""Prometheus metrics of every stage, defined once here; stages count, `--metrics-port` serves.

Every metric has the labels `component` (tracker, scan, processor, mirror, restore) and `volume`. The
counters are process-local: a restarted stage starts again from zero, which Prometheus' `rate()`
handles. The processor counts what it emits inside a Kafka transaction; a failed transaction
stops the worker, so a count never outlives the events it counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from .exceptions import MetricsServerError

LABELS = ("component", "volume")

EVENTS = Counter("tidemark_events", "Events handled (published, folded or applied)", LABELS)
BYTES = Counter("tidemark_bytes", "Block bytes handled (published, shipped or applied)", LABELS)
RPO_LAG = Histogram(
    "tidemark_rpo_lag_seconds",
    "Age of the newest replicated data when it reached this stage",
    LABELS,
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
RECOVERY_POINTS = Counter("tidemark_recovery_points", "Recovery points cut (processor) or held (mirror)", LABELS)
THROTTLED = Counter("tidemark_throttled_seconds", "Time background I/O slept to spare production storage", LABELS)
DEAD_LETTERS = Counter("tidemark_dead_letters", "Messages sent to the dead-letter topic", LABELS)
RESYNC_REQUESTS = Counter("tidemark_resync_requests", "Resync requests (seq gaps, lost writes)", LABELS)
FENCED_EVENTS = Counter("tidemark_fenced_events", "Events refused because a failover fenced their generation", LABELS)
AT_RISK_BYTES = Gauge(
    "tidemark_at_risk_bytes",
    "Tracker: bytes acknowledged but not yet on Kafka (unshipped events and dirty blocks)",
    LABELS,
)
AT_RISK_AGE = Gauge(
    "tidemark_at_risk_age_seconds", "Tracker: age of the oldest write not yet on Kafka (RPO at risk)", LABELS
)
RESTORE_REMAINING = Gauge(
    "tidemark_restore_remaining_bytes", "Restore: bytes of the point still to relocate into the destination", LABELS
)


@dataclass(frozen=True)
class StageMetrics:
    """The metrics of one component for one volume; creating it makes every series visible at 0."""

    component: str
    volume: str
    _events: Counter = field(init=False, repr=False, compare=False)
    """EVENTS of these labels (looked up once: `labels()` takes a lock and a dict lookup)"""
    _bytes: Counter = field(init=False, repr=False, compare=False)
    """BYTES of these labels"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_events", EVENTS.labels(self.component, self.volume))
        object.__setattr__(self, "_bytes", BYTES.labels(self.component, self.volume))
        for metric in (
            EVENTS,
            BYTES,
            RPO_LAG,
            RECOVERY_POINTS,
            THROTTLED,
            DEAD_LETTERS,
            RESYNC_REQUESTS,
            AT_RISK_BYTES,
            AT_RISK_AGE,
            RESTORE_REMAINING,
        ):
            metric.labels(self.component, self.volume)

    def handled(self, events: int = 1, nbytes: int = 0) -> None:
        self._events.inc(events)
        if nbytes:
            self._bytes.inc(nbytes)

    def lag(self, seconds: float) -> None:
        RPO_LAG.labels(self.component, self.volume).observe(max(0.0, seconds))

    def recovery_point(self) -> None:
        RECOVERY_POINTS.labels(self.component, self.volume).inc()

    def throttled(self, seconds: float) -> None:
        if seconds > 0:
            THROTTLED.labels(self.component, self.volume).inc(seconds)

    def dead_letter(self) -> None:
        DEAD_LETTERS.labels(self.component, self.volume).inc()

    def resync_request(self) -> None:
        RESYNC_REQUESTS.labels(self.component, self.volume).inc()

    def fenced(self) -> None:
        FENCED_EVENTS.labels(self.component, self.volume).inc()

    def at_risk(self, nbytes: int, oldest_age: float) -> None:
        """The unshipped window of a tracker, as gauges (set, not counted)."""
        AT_RISK_BYTES.labels(self.component, self.volume).set(nbytes)
        AT_RISK_AGE.labels(self.component, self.volume).set(oldest_age)

    def restore_remaining(self, nbytes: int) -> None:
        RESTORE_REMAINING.labels(self.component, self.volume).set(nbytes)


@lru_cache(maxsize=4096)
def stage_metrics(component: str, volume: str) -> StageMetrics:
    """The (cached) metrics of one component and volume, for hot paths."""
    return StageMetrics(component, volume)


def serve_metrics(port: int | None, addr: str = "127.0.0.1") -> None:
    """Start the `/metrics` HTTP endpoint in a daemon thread (nothing when `port` is None)."""
    if port is None:
        return
    try:
        start_http_server(port, addr=addr)
    except OSError as exc:
        raise MetricsServerError(
            f"cannot serve metrics on {addr}:{port} ({exc.strerror}); choose another --metrics-port"
        ) from exc
