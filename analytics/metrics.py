"""Prometheus figures of the analytics app, in its own registry (served at /metrics).

`tidemark_analytics_alert_active{kind,volume,site}` is 1 while an episode is raised: the same
alerts as the alerts topic. Per volume, the figures of the last closed window; per site, the lag.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

if TYPE_CHECKING:
    from .engine import Engine

WINDOW_FIGURES = {
    "iops": "writes per second",
    "bytes_per_second": "bytes written per second",
    "overwrite_ratio": "share of block writes that rewrote a block of the same window",
    "high_fraction": "share of sampled blocks with high entropy",
    "mean_entropy": "mean entropy of the sampled blocks, bits per byte",
}


class AnalyticsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alert_active = Gauge(
            "tidemark_analytics_alert_active", "1 while an alert episode is raised",
            ["kind", "volume", "site"], registry=self.registry,
        )  # fmt: skip
        self.alerts = Counter(
            "tidemark_analytics_alerts", "alert events published", ["kind", "state"], registry=self.registry
        )
        self.window = {
            name: Gauge(f"tidemark_analytics_window_{name}", f"last closed window: {doc}", ["volume"],
                        registry=self.registry)
            for name, doc in WINDOW_FIGURES.items()
        }  # fmt: skip
        self.baseline = Gauge(
            "tidemark_analytics_entropy_baseline", "the volume's normal share of high-entropy samples",
            ["volume"], registry=self.registry,
        )  # fmt: skip
        self.lag = Gauge(
            "tidemark_analytics_rpo_lag_seconds", "a site's lag behind the journal", ["site", "volume"],
            registry=self.registry,
        )  # fmt: skip
        self.consumer_lag = Gauge(
            "tidemark_analytics_consumer_lag_seconds",
            "wall-clock age of the newest writes message handled (how far analytics is behind)",
            registry=self.registry,
        )
        self.events = Counter("tidemark_analytics_events", "messages handled", ["topic"], registry=self.registry)
        self.journal_partitions = Gauge(
            "tidemark_analytics_journal_partitions", "writes partitions the journal reader holds",
            registry=self.registry,
        )  # fmt: skip

    def seen(self, topic: str, timestamp_s: float, count: int = 1) -> None:
        """`count` messages of `topic` handled, the newest appended at `timestamp_s`."""
        self.events.labels(topic).inc(count)
        self.consumer_lag.set(max(0.0, time.time() - timestamp_s))

    def alert(self, alert: dict[str, Any]) -> None:
        self.alerts.labels(alert["kind"], alert["state"]).inc()
        labels = (alert["kind"], alert["volume"] or "", alert["site"] or "")
        self.alert_active.labels(*labels).set(1 if alert["state"] == "RAISED" else 0)

    def refresh(self, engine: Engine) -> None:
        """Copy the newest figures of every volume and site into the gauges."""
        for volume, state in engine.live.items():
            self.baseline.labels(volume).set(state.detector.baseline)
            windows = engine.cached("windows").get(volume) or []
            if windows:
                for name, gauge in self.window.items():
                    gauge.labels(volume).set(windows[-1][name])
        for view in engine.cached("mirrors").values():
            self.lag.labels(view["site"], view["volume"]).set(view["lag_seconds"])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
