"""ENCRYPTION_SUSPECTED alerts from the detector's transitions: a raise waits in the volume's
`pending` until its clean point is settled (cleanpoint.py) or `clean_point_grace_s` of message
time passed, then is emitted once; the clear follows the raise under the same alert_id."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .alerts import alert_record
from .cleanpoint import clean_point, settled
from .detector import Transition
from .settings import AnalyticsSettings
from .volume import VolumeAnalytics


def on_transitions(
    state: VolumeAnalytics, transitions: Sequence[Transition], points: Sequence[dict[str, Any]],
    now_ms: int, settings: AnalyticsSettings,
) -> list[dict[str, Any]]:  # fmt: skip
    """The Alert records due now, after folding `transitions` into `state`."""
    alerts: list[dict[str, Any]] = []
    for change in transitions:
        if change.state == "RAISED":
            state.pending = {
                "start_ms": change.start_ms, "end_ms": change.end_ms, "evidence": change.evidence,
                "change_seq": change.change_seq, "last_normal_seq": change.last_normal_seq, "decided_ms": now_ms,
            }  # fmt: skip
            continue
        alerts += flush_pending(state, points, now_ms, settings, force=True)
        if state.raised is not None:
            alerts.append(alert_record(
                "ENCRYPTION_SUSPECTED", "CLEARED", volume=state.volume, timestamp_ms=now_ms,
                episode_start_ms=state.raised["start_ms"], window_start_ms=change.start_ms,
                window_end_ms=change.end_ms, evidence=change.evidence,
                message=f"volume {state.volume}: writes look normal again for {settings.clear_windows} windows",
            ))  # fmt: skip
            state.raised = None
    return alerts + flush_pending(state, points, now_ms, settings, force=False)


def flush_pending(
    state: VolumeAnalytics, points: Sequence[dict[str, Any]], now_ms: int, settings: AnalyticsSettings, force: bool
) -> list[dict[str, Any]]:
    """Emit the pending raise once its clean point is settled, the grace ran out, or `force`."""
    pending = state.pending
    if pending is None:
        return []
    grace_over = now_ms - pending["decided_ms"] >= settings.clean_point_grace_s * 1000
    if not (force or grace_over or settled(points, pending["change_seq"])):
        return []
    clean = clean_point(points, pending["change_seq"], pending["last_normal_seq"])
    evidence = pending["evidence"]
    if clean is None:
        advice = "no recovery point before the change is known"
    else:
        advice = (
            f"suggested clean point: recovery point {clean['rp_id']}"
            f"{' (' + clean['label'] + ')' if clean.get('label') else ''} at seq {clean['seq']}, "
            f"{_utc(clean['created_at'])}; revert a mirror with "
            f"`tidemark revert --volume {state.volume} --mirror IMAGE --to {clean['rp_id']}`"
        )
    message = (
        f"volume {state.volume}: {evidence['high_entropy_fraction']:.0%} of the blocks sampled from "
        f"{_utc(pending['start_ms'])} to {_utc(pending['end_ms'])} look encrypted "
        f"(baseline {evidence['baseline_fraction']:.0%}), from write seq {pending['change_seq']}; {advice}"
    )
    state.raised, state.pending = {"start_ms": pending["start_ms"]}, None
    return [alert_record(
        "ENCRYPTION_SUSPECTED", "RAISED", volume=state.volume, timestamp_ms=now_ms,
        episode_start_ms=pending["start_ms"], window_start_ms=pending["start_ms"], window_end_ms=pending["end_ms"],
        message=message, evidence=evidence, clean=clean, change_seq=pending["change_seq"],
        last_normal_seq=pending["last_normal_seq"],
    )]  # fmt: skip


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))
