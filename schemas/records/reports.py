"""What stages report about themselves: MirrorStatus, VolumeMetrics, Alert and DeadLetter.

A dead letter must always fit in one Kafka message, whatever it carries: `dead_letter` keeps the
raw value only up to `MAX_VALUE_BYTES`, with the whole value's length and xxh3-64 beside it, so an
operator can still tell which message it was and whether a copy elsewhere is the same bytes.
"""

from __future__ import annotations

from typing import TypedDict

import xxhash

MAX_VALUE_BYTES = 64 * 1024
"""Bytes of the raw value (and key) kept in a dead letter; `value_length` says how long it was."""


class MirrorStatus(TypedDict):
    """What one site's mirror of a volume holds; `state` one of MirrorState's symbols."""

    site: str
    volume: str
    state: str
    changeset_id: int | None
    applied_seq: int | None
    rp_id: int | None
    lag_events: int
    lag_seconds: float
    timestamp: int
    message: str | None


class HotExtent(TypedDict):
    offset: int
    length: int
    writes: int


class VolumeMetrics(TypedDict):
    """One volume over one window [window_start, window_end] (milliseconds of log time)."""

    volume: str
    window_start: int
    window_end: int
    writes: int
    bytes_written: int
    bytes_shipped: int
    writes_per_second: float
    bytes_per_second: float
    overwrite_ratio: float
    hottest_extents: list[HotExtent]
    rpo_lag_seconds: float
    resync_requests: int
    dead_letters: int
    fenced_events: int


class Alert(TypedDict):
    """An analytics alert: RAISED once when an episode starts, CLEARED once when it ends."""

    alert_id: str
    kind: str
    state: str
    volume: str | None
    site: str | None
    timestamp: int
    window_start: int
    window_end: int
    message: str
    evidence: dict[str, float]
    change_seq: int | None
    last_normal_seq: int | None
    clean_rp_id: int | None
    clean_rp_seq: int | None
    clean_rp_created_at: int | None
    clean_rp_label: str | None


class DeadLetter(TypedDict):
    """Input a stage could not accept; `value` cut to MAX_VALUE_BYTES, `value_length` the whole length."""

    stage: str
    reason: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    volume: str | None
    timestamp: int
    value_length: int
    value_xxh3: bytes | None


def mirror_status(
    *,
    site: str,
    volume: str,
    state: str,
    lag_events: int,
    lag_seconds: float,
    timestamp: int,
    changeset_id: int | None = None,
    applied_seq: int | None = None,
    rp_id: int | None = None,
    message: str | None = None,
) -> MirrorStatus:
    """A MirrorStatus; `timestamp` in milliseconds."""
    return {
        "site": site,
        "volume": volume,
        "state": state,
        "changeset_id": changeset_id,
        "applied_seq": applied_seq,
        "rp_id": rp_id,
        "lag_events": lag_events,
        "lag_seconds": lag_seconds,
        "timestamp": timestamp,
        "message": message,
    }


def hot_extent(*, offset: int, length: int, writes: int) -> HotExtent:
    return {"offset": offset, "length": length, "writes": writes}


def volume_metrics(
    *,
    volume: str,
    window_start: int,
    window_end: int,
    writes: int,
    bytes_written: int,
    bytes_shipped: int,
    writes_per_second: float,
    bytes_per_second: float,
    overwrite_ratio: float,
    hottest_extents: list[HotExtent],
    rpo_lag_seconds: float,
    resync_requests: int,
    dead_letters: int,
    fenced_events: int = 0,
) -> VolumeMetrics:
    """A VolumeMetrics record of one window."""
    return {
        "volume": volume,
        "window_start": window_start,
        "window_end": window_end,
        "writes": writes,
        "bytes_written": bytes_written,
        "bytes_shipped": bytes_shipped,
        "writes_per_second": writes_per_second,
        "bytes_per_second": bytes_per_second,
        "overwrite_ratio": overwrite_ratio,
        "hottest_extents": hottest_extents,
        "rpo_lag_seconds": rpo_lag_seconds,
        "resync_requests": resync_requests,
        "dead_letters": dead_letters,
        "fenced_events": fenced_events,
    }


def alert(
    *,
    alert_id: str,
    kind: str,
    state: str,
    timestamp: int,
    window_start: int,
    window_end: int,
    message: str,
    evidence: dict[str, float],
    volume: str | None = None,
    site: str | None = None,
    change_seq: int | None = None,
    last_normal_seq: int | None = None,
    clean_rp_id: int | None = None,
    clean_rp_seq: int | None = None,
    clean_rp_created_at: int | None = None,
    clean_rp_label: str | None = None,
) -> Alert:
    """An Alert; times in milliseconds; `kind` and `state` symbols of AlertKind and AlertState."""
    return {
        "alert_id": alert_id,
        "kind": kind,
        "state": state,
        "volume": volume,
        "site": site,
        "timestamp": timestamp,
        "window_start": window_start,
        "window_end": window_end,
        "message": message,
        "evidence": evidence,
        "change_seq": change_seq,
        "last_normal_seq": last_normal_seq,
        "clean_rp_id": clean_rp_id,
        "clean_rp_seq": clean_rp_seq,
        "clean_rp_created_at": clean_rp_created_at,
        "clean_rp_label": clean_rp_label,
    }


def dead_letter(
    *,
    stage: str,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    volume: str | None,
    timestamp: int,
) -> DeadLetter:
    """A DeadLetter of the message at `topic`[`partition`]@`offset`; `timestamp` in milliseconds.

    The key and the value are cut to MAX_VALUE_BYTES; `value_length` and `value_xxh3` describe the
    whole value (an absent value counts as empty).
    """
    raw = value or b""
    return {
        "stage": stage,
        "reason": reason,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key[:MAX_VALUE_BYTES] if key else key,
        "value": bytes(raw[:MAX_VALUE_BYTES]),
        "volume": volume,
        "timestamp": timestamp,
        "value_length": len(raw),
        "value_xxh3": xxhash.xxh3_64_digest(raw),
    }
