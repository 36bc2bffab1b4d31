"""DEAD_LETTERS: raised when a window holds `dead_letters` (setting) or more dead letters of one
subject (a volume, or `*` when the dead letter names none), cleared after `clear_windows` windows
in a row with fewer. Windows are tumbling, in message time; `advance` closes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .alerts import NO_VOLUME, Episode, alert_record
from .settings import AnalyticsSettings
from .windows import window_start


@dataclass
class DeadLetterWatch:
    subject: str
    start_ms: int | None = None
    count: int = 0
    total: int = 0
    last_reason: str = ""
    episode: Episode = field(default_factory=Episode)

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "start_ms": self.start_ms, "count": self.count, "total": self.total,
                "last_reason": self.last_reason, "episode": self.episode.to_json()}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeadLetterWatch:
        data = dict(data)
        return cls(**data | {"episode": Episode.from_json(data["episode"])})


def on_dead_letter(
    watch: DeadLetterWatch, now_ms: int, reason: str, settings: AnalyticsSettings
) -> list[dict[str, Any]]:
    alerts = advance(watch, now_ms, settings)
    length = int(settings.window_s * 1000)
    if watch.start_ms is None:
        watch.start_ms = window_start(now_ms, length)
    watch.count += 1
    watch.total += 1
    watch.last_reason = reason
    if watch.count >= settings.dead_letters:
        alerts += _change(watch, True, now_ms, settings)
    return alerts


def advance(watch: DeadLetterWatch, now_ms: int, settings: AnalyticsSettings) -> list[dict[str, Any]]:
    """Close every window of `watch` that ended by now_ms."""
    length = int(settings.window_s * 1000)
    if watch.start_ms is None or now_ms < watch.start_ms + length:
        return []
    closed = (now_ms - watch.start_ms) // length
    calm = closed if watch.count < settings.dead_letters else closed - 1
    watch.start_ms, watch.count = None, 0
    alerts: list[dict[str, Any]] = []
    for _ in range(calm):
        alerts += _change(watch, False, now_ms, settings)
        if not watch.episode.active:
            break
    if watch.episode.active:
        watch.start_ms = window_start(now_ms, length)
    return alerts


def _change(watch: DeadLetterWatch, bad: bool, now_ms: int, settings: AnalyticsSettings) -> list[dict[str, Any]]:
    change = watch.episode.update(bad, now_ms, settings.clear_windows)
    if change is None:
        return []
    state, started = change
    volume = None if watch.subject == NO_VOLUME else watch.subject
    where = f"volume {volume}" if volume else "events without a volume"
    message = (
        f"{watch.count} dead letters for {where} in {settings.window_s:.0f} s (last: {watch.last_reason}); "
        "read them with `kcat` on the dead-letters topic and fix the producer"
        if state == "RAISED" else f"no more dead letters for {where}"
    )  # fmt: skip
    return [alert_record(
        "DEAD_LETTERS", state, volume=volume, timestamp_ms=now_ms, episode_start_ms=started,
        window_start_ms=started, window_end_ms=now_ms, message=message,
        evidence={"in_window": float(watch.count), "total": float(watch.total)},
    )]  # fmt: skip
