"""Each site's mirror of each volume, from MirrorStatus events: state, RPO lag over time, and the
RPO_LAG_HIGH and MIRROR_RESYNC_NEEDED episodes. "Now" is the status's own timestamp."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .alerts import Episode, Kind, alert_record
from .settings import AnalyticsSettings

HISTORY_MIN_STEP_MS = 1000


@dataclass
class MirrorView:
    site: str
    volume: str
    state: str = "UNKNOWN"
    lag_seconds: float = 0.0
    lag_events: int = 0
    rp_id: int | None = None
    applied_seq: int | None = None
    timestamp: int = 0
    message: str | None = None
    history: list[list[float]] = field(default_factory=list)
    """[timestamp_ms, lag_seconds], one per second at most, the last `history_kept`."""
    lag: Episode = field(default_factory=Episode)
    resync: Episode = field(default_factory=Episode)

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site, "volume": self.volume, "state": self.state, "lag_seconds": self.lag_seconds,
            "lag_events": self.lag_events, "rp_id": self.rp_id, "applied_seq": self.applied_seq,
            "timestamp": self.timestamp, "message": self.message, "history": self.history,
            "lag": self.lag.to_json(), "resync": self.resync.to_json(),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MirrorView:
        data = dict(data)
        lag, resync = Episode.from_json(data.pop("lag")), Episode.from_json(data.pop("resync"))
        return cls(**data, lag=lag, resync=resync)


def on_status(
    view: MirrorView, status: dict[str, Any], settings: AnalyticsSettings, history_kept: int
) -> list[dict[str, Any]]:
    """Fold one MirrorStatus into `view`; the Alert records it causes."""
    now = int(status["timestamp"])
    view.state, view.lag_seconds, view.lag_events = status["state"], float(status["lag_seconds"]), status["lag_events"]
    view.rp_id, view.applied_seq, view.timestamp = status["rp_id"], status["applied_seq"], now
    view.message = status["message"]
    if not view.history or now - view.history[-1][0] >= HISTORY_MIN_STEP_MS:
        view.history.append([now, view.lag_seconds])
        del view.history[:-history_kept]
    lag = _episode_alert(
        view, "RPO_LAG_HIGH", view.lag.update(view.lag_seconds > settings.rpo_lag_s, now), now,
        raised=f"site {view.site} is {view.lag_seconds:.1f} s behind on volume {view.volume} "
        f"(threshold {settings.rpo_lag_s:.0f} s): check its mirror process and link",
        cleared=f"site {view.site} caught up on volume {view.volume}",
        evidence={"lag_seconds": view.lag_seconds, "lag_events": float(view.lag_events),
                  "threshold_seconds": settings.rpo_lag_s},
    )  # fmt: skip
    resync = _episode_alert(
        view, "MIRROR_RESYNC_NEEDED", view.resync.update(view.state == "RESYNC_NEEDED", now), now,
        raised=f"site {view.site} needs a resync of volume {view.volume}: "
        f"run `tidemark resync --volume {view.volume}` ({view.message or 'no detail'})",
        cleared=f"site {view.site} is {view.state} again on volume {view.volume}",
        evidence={"lag_events": float(view.lag_events)},
    )  # fmt: skip
    return [alert for alert in (lag, resync) if alert is not None]


def _episode_alert(
    view: MirrorView,
    kind: Kind,
    change: tuple[Literal["RAISED", "CLEARED"], int] | None,
    now: int,
    *,
    raised: str,
    cleared: str,
    evidence: dict[str, float],
) -> dict[str, Any] | None:
    """The Alert record of an episode of `view`'s mirror that `change` (Episode.update's) raised or cleared."""
    if change is None:
        return None
    state, started = change
    return alert_record(
        kind, state, volume=view.volume, site=view.site, timestamp_ms=now, episode_start_ms=started,
        window_start_ms=started, window_end_ms=now, message=raised if state == "RAISED" else cleared,
        evidence=evidence,
    )  # fmt: skip
