"""One volume's analytics state and how each journal event changes it (pure: no Kafka).

`VolumeFold.on_write` and `VolumeFold.advance` take the message timestamp as "now": an event
first closes every window that ended before it, then lands in its own window. Closing a window
yields its summary and the detector's verdict; an ENCRYPTION_SUSPECTED raise then waits in
`pending` for its clean point (cleanpoint.py) and is emitted by the caller.

Sampling: in a window, write seq is measured when `sampled(volume, seq, stride)` and fewer than
`sample_budget` blocks were measured yet, with the stride set from the previous window's write
count so a window as busy as the last spreads its budget over the whole window. The cost per
window is then at most `sample_budget` block decompressions plus histograms, whatever the rate.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pyroaring import BitMap

from .detector import DetectorState, EncryptionDetector, Transition
from .entropy import sample_block, sampled, shannon_entropy, stride_for
from .exceptions import PayloadError
from .payload import raw_data
from .settings import AnalyticsSettings
from .windows import OpenWindow, window_start

DEFAULT_BLOCK_SIZE = 4096


@dataclass
class VolumeAnalytics:
    volume: str
    block_size: int = DEFAULT_BLOCK_SIZE
    size: int = 0
    window: OpenWindow | None = None
    previous_writes: int = 0
    detector: DetectorState = field(default_factory=DetectorState)
    pending: dict[str, Any] | None = None
    """A raise waiting for its clean point: the Transition's fields, plus `decided_ms`."""
    raised: dict[str, Any] | None = None
    """The emitted raise of the running episode (its alert_id's start, clean point) until cleared."""
    unmeasured: int = 0
    writes: int = 0
    last_ms: int = 0
    idle_from_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "volume": self.volume, "block_size": self.block_size, "size": self.size,
            "window": _window_json(self.window) if self.window else None,
            "previous_writes": self.previous_writes, "detector": self.detector.to_json(),
            "pending": self.pending, "raised": self.raised, "unmeasured": self.unmeasured,
            "writes": self.writes, "last_ms": self.last_ms, "idle_from_ms": self.idle_from_ms,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VolumeAnalytics:
        data = dict(data)
        raw_window = data.pop("window")
        window = _window_from_json(raw_window) if raw_window else None
        detector = DetectorState.from_json(data.pop("detector"))
        return cls(**data, window=window, detector=detector)


@dataclass
class Closed:
    """What closing windows produced: their summaries and the detector's transitions."""

    summaries: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)


class VolumeFold:
    def __init__(self, settings: AnalyticsSettings) -> None:
        self.s = settings
        self.detector = EncryptionDetector(settings)
        self.length_ms = int(settings.window_s * 1000)

    def on_write(self, state: VolumeAnalytics, record: dict[str, Any], now_ms: int) -> Closed:
        """Fold one BlockWrite (ZERO and TRIM count as writes but carry nothing to measure)."""
        closed = self.advance(state, now_ms)
        if state.window is None:
            state.window = OpenWindow(window_start(now_ms, self.length_ms), self.length_ms)
            state.idle_from_ms = None
        window = state.window
        seq = record["seq"]
        window.add_write(seq, record["offset"], record["length"], state.block_size)
        state.writes += 1
        stride = stride_for(state.previous_writes, self.s.sample_budget)
        if record["op"] == "WRITE" and window.samples < self.s.sample_budget and sampled(state.volume, seq, stride):
            try:
                block = sample_block(raw_data(record), state.block_size, seq)
            except PayloadError:
                state.unmeasured += 1
            else:
                window.add_sample(seq, shannon_entropy(block), self.s.high_entropy_bits)
        return closed

    def advance(self, state: VolumeAnalytics, now_ms: int) -> Closed:
        """Close the open window if it ended by now_ms; windows without writes since the last
        closed one count as calm for the detector (`idle_from_ms`: where they start)."""
        closed = Closed()
        state.last_ms = max(state.last_ms, now_ms)
        window = state.window
        if window is not None and now_ms >= window.end_ms:
            summary = window.summary(self.s.hot_regions, state.size, self.s.heatmap_buckets)
            closed.summaries.append(summary)
            state.window, state.previous_writes, state.idle_from_ms = None, window.writes, window.end_ms
            judged = self.detector.judge(state.detector, summary)
            if judged is not None:
                closed.transitions.append(judged)
        if state.window is None and state.idle_from_ms is not None:
            idle_until = window_start(now_ms, self.length_ms)
            empty = (idle_until - state.idle_from_ms) // self.length_ms
            if empty > 0:
                state.previous_writes = 0
                idle = self.detector.idle(state.detector, state.idle_from_ms, idle_until, empty)
                state.idle_from_ms = idle_until
                if idle is not None:
                    closed.transitions.append(idle)
        return closed


def _window_json(window: OpenWindow) -> dict[str, Any]:
    return {
        "start_ms": window.start_ms, "length_ms": window.length_ms, "writes": window.writes,
        "bytes": window.bytes, "block_writes": window.block_writes, "first_seq": window.first_seq,
        "last_seq": window.last_seq, "sizes": list(window.sizes.items()), "regions": list(window.regions.items()),
        "blocks": base64.b64encode(window.blocks.serialize()).decode(), "samples": window.samples,
        "high": window.high, "entropy_sum": window.entropy_sum, "first_high_seq": window.first_high_seq,
        "last_low_seq": window.last_low_seq, "latest_low_seq": window.latest_low_seq,
    }  # fmt: skip


def _window_from_json(data: dict[str, Any]) -> OpenWindow:
    data = dict(data)
    sizes = Counter({int(k): int(v) for k, v in data.pop("sizes")})
    regions = Counter({int(k): int(v) for k, v in data.pop("regions")})
    blocks = BitMap.deserialize(base64.b64decode(data.pop("blocks")))
    return OpenWindow(**data, sizes=sizes, regions=regions, blocks=blocks)
