"""What `tidemark status` reports per volume (plain dataclasses, printed as a table or JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrackerInfo:
    """The newest event a tracker published for the volume on the writes topic."""

    epoch: int | None
    last_seq: int | None
    last_event: str
    """BlockWrite, or Marker:<kind>"""
    timestamp_us: int


@dataclass
class PointInfo:
    rp_id: int
    kind: str
    label: str | None
    seq: int
    created_at_ms: int
    changed_bytes: int


@dataclass
class SiteInfo:
    """The newest MirrorStatus of one site's mirror of the volume."""

    site: str
    state: str
    rp_id: int | None
    changeset_id: int | None
    applied_seq: int | None
    lag_events: int
    lag_seconds: float
    timestamp_ms: int
    message: str | None
    pinned: list[int] = field(default_factory=list)
    """points pinned by a mount, revert, failover or verify in progress (read from this machine's
    state directory: empty for a site whose state lives elsewhere)"""


@dataclass
class Throughput:
    """The newest VolumeMetrics window, plus totals over every window in the topic."""

    window_end_ms: int
    writes_per_second: float
    bytes_per_second: float
    rpo_lag_seconds: float
    bytes_written_total: int
    bytes_shipped_total: int


@dataclass
class VolumeStatus:
    volume: str
    size: int
    block_size: int
    group: str | None
    tracker: TrackerInfo | None = None
    recovery_points: int = 0
    last_recovery_point: PointInfo | None = None
    sites: list[SiteInfo] = field(default_factory=list)
    throughput: Throughput | None = None
    dead_letters: int = 0

    @property
    def rpo_lag_seconds(self) -> float | None:
        """The worst lag of any site, else the processor's; None when nothing measured it yet."""
        if self.sites:
            return max(site.lag_seconds for site in self.sites)
        return self.throughput.rpo_lag_seconds if self.throughput else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rpo_lag_seconds"] = self.rpo_lag_seconds
        return data
