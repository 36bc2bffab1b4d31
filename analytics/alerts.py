"""Alert records (schemas/Alert.avsc) and the one rule every alert follows: raised once per
episode, cleared once when it ends, both under the same alert_id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tidemark.schemas import records

Kind = Literal["ENCRYPTION_SUSPECTED", "RPO_LAG_HIGH", "MIRROR_RESYNC_NEEDED", "DEAD_LETTERS"]
KINDS: tuple[Kind, ...] = ("ENCRYPTION_SUSPECTED", "RPO_LAG_HIGH", "MIRROR_RESYNC_NEEDED", "DEAD_LETTERS")
NO_VOLUME = "*"


def alert_id(kind: Kind, site: str | None, volume: str | None, episode_start_ms: int) -> str:
    return f"{kind}/{site or ''}/{volume or ''}/{episode_start_ms}"


def alert_record(
    kind: Kind,
    state: Literal["RAISED", "CLEARED"],
    *,
    volume: str | None,
    site: str | None = None,
    timestamp_ms: int,
    episode_start_ms: int,
    window_start_ms: int,
    window_end_ms: int,
    message: str,
    evidence: dict[str, float],
    clean: dict[str, Any] | None = None,
    change_seq: int | None = None,
    last_normal_seq: int | None = None,
) -> dict[str, Any]:
    """An Alert record (as the plain dict the engine passes around, like the records it decodes)."""
    return dict(
        records.alert(
            alert_id=alert_id(kind, site, volume, episode_start_ms),
            kind=kind,
            state=state,
            volume=volume,
            site=site,
            timestamp=timestamp_ms,
            window_start=window_start_ms,
            window_end=window_end_ms,
            message=message,
            evidence=evidence,
            change_seq=change_seq,
            last_normal_seq=last_normal_seq,
            clean_rp_id=clean["rp_id"] if clean else None,
            clean_rp_seq=clean["seq"] if clean else None,
            clean_rp_created_at=clean["created_at"] if clean else None,
            clean_rp_label=clean.get("label") if clean else None,
        )
    )


@dataclass
class Episode:
    """One condition of one subject: `start_ms` is set while it is raised."""

    start_ms: int | None = None
    calm: int = 0

    @property
    def active(self) -> bool:
        return self.start_ms is not None

    def update(self, bad: bool, now_ms: int, calm_needed: int = 1) -> tuple[Literal["RAISED", "CLEARED"], int] | None:
        """Feed one observation: ("RAISED", start) on the first bad one, ("CLEARED", start) after
        `calm_needed` good ones in a row, None otherwise (start: the episode's first bad one)."""
        if bad:
            self.calm = 0
            if self.start_ms is None:
                self.start_ms = now_ms
                return "RAISED", now_ms
            return None
        if self.start_ms is None:
            return None
        self.calm += 1
        if self.calm < calm_needed:
            return None
        started, self.calm, self.start_ms = self.start_ms, 0, None
        return "CLEARED", started

    def to_json(self) -> list[int | None]:
        return [self.start_ms, self.calm]

    @classmethod
    def from_json(cls, data: list[int | None]) -> Episode:
        return cls(data[0], data[1] or 0)
