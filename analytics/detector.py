"""The encryption early warning: a window's high-entropy share against the volume's own baseline.

Per closed window (see windows.py) with at least `min_samples` samples, the share of sampled
blocks at or above `high_entropy_bits` is compared with the volume's baseline, an exponential
average of the share over normal windows:

- suspected: share >= min_fraction and share - baseline >= min_rise;
- elevated: share - baseline >= min_rise / 2 (a run of elevated windows is where a change starts);
- normal otherwise; a normal window updates the baseline, an elevated or suspected one never does.

An episode is raised on the first suspected window (after `warmup_windows` judged windows) and
cleared after `clear_windows` windows in a row that are neither (a window without writes counts as
such). The change is dated by sequence numbers: `change_seq` is the first high-entropy sample of
the elevated run, `last_normal_seq` the last low-entropy sample before it; every write up to
`last_normal_seq` was sampled normal or not sampled, so the suggested clean point is the newest
recovery point whose seq <= last_normal_seq (see cleanpoint.py). A window with too few samples to
judge still moves the last low-entropy sample on when every sample in it was low and every sample
since the last judged normal window was too (`all_low_since_judged`): the tail of a seed that
falls into a window of its own must not push the suggestion back before the point cut after it,
and a high sample in a small window, or an episode, keeps it where it was until a judged normal
window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from .settings import AnalyticsSettings


@dataclass
class DetectorState:
    baseline: float = 0.0
    judged: int = 0
    active: bool = False
    calm: int = 0
    last_low_seq: int | None = None
    run_first_high_seq: int | None = None
    run_last_low_seq: int | None = None
    episode_start_ms: int | None = None
    all_low_since_judged: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetectorState:
        return cls(**data)


@dataclass(frozen=True)
class Transition:
    """An episode starts (`RAISED`) or ends (`CLEARED`) at the window [start_ms, end_ms)."""

    state: Literal["RAISED", "CLEARED"]
    start_ms: int
    end_ms: int
    evidence: dict[str, float]
    change_seq: int | None = None
    last_normal_seq: int | None = None


class EncryptionDetector:
    def __init__(self, settings: AnalyticsSettings) -> None:
        self.s = settings

    def judge(self, state: DetectorState, window: dict[str, Any]) -> Transition | None:
        """Fold one closed window summary into `state`; the episode transition it causes, if any."""
        samples, share = window["samples"], window["high_fraction"]
        if samples < self.s.min_samples:
            if window["high_entropy"]:
                state.all_low_since_judged = False
                return None
            if state.all_low_since_judged and window["latest_low_seq"] is not None:
                state.last_low_seq = window["latest_low_seq"]  # too few to judge, but every sample normal
            return self._quiet(state, window)
        rise = share - state.baseline
        suspected = share >= self.s.min_fraction and rise >= self.s.min_rise
        if not suspected and rise < self.s.min_rise / 2:
            state.run_first_high_seq = state.run_last_low_seq = None
            state.all_low_since_judged = not state.active
            if window["latest_low_seq"] is not None:
                state.last_low_seq = window["latest_low_seq"]
            weight = 1.0 if state.judged == 0 else self.s.baseline_weight
            if not state.active:
                state.baseline += weight * (share - state.baseline)
            state.judged += 1
            return self._quiet(state, window)
        state.all_low_since_judged = False
        if state.run_first_high_seq is None:
            state.run_first_high_seq = window["first_high_seq"]
            low = window["last_low_seq"]
            state.run_last_low_seq = low if low is not None else state.last_low_seq
        state.calm = 0
        if not suspected or state.active or state.judged < self.s.warmup_windows:
            return None
        state.active = True
        state.episode_start_ms = window["start_ms"]
        evidence = {
            "high_entropy_fraction": share,
            "baseline_fraction": state.baseline,
            "mean_entropy_bits": window["mean_entropy"],
            "samples": float(samples),
            "writes": float(window["writes"]),
            "bytes": float(window["bytes"]),
        }
        return Transition(
            "RAISED", window["start_ms"], window["end_ms"], evidence,
            state.run_first_high_seq, state.run_last_low_seq,
        )  # fmt: skip

    def idle(self, state: DetectorState, start_ms: int, end_ms: int, windows: int) -> Transition | None:
        """`windows` windows without a write, ending at end_ms: calm for an active episode."""
        if not state.active:
            return None
        state.calm += windows
        return self._clear_if_calm(state, start_ms, end_ms)

    def _quiet(self, state: DetectorState, window: dict[str, Any]) -> Transition | None:
        if not state.active:
            return None
        state.calm += 1
        return self._clear_if_calm(state, window["start_ms"], window["end_ms"])

    def _clear_if_calm(self, state: DetectorState, start_ms: int, end_ms: int) -> Transition | None:
        if state.calm < self.s.clear_windows:
            return None
        started = state.episode_start_ms if state.episode_start_ms is not None else start_ms
        state.active, state.calm, state.episode_start_ms = False, 0, None
        state.run_first_high_seq = state.run_last_low_seq = None
        state.all_low_since_judged = False
        return Transition("CLEARED", started, end_ms, {"baseline_fraction": state.baseline})
