"""Per-volume processor state. Its JSON (the changelog value) has a constant size.

Nothing in the JSON grows with the writes: the dirty blocks of the open sub-interval are in
`refs` (memory only, rebuilt after a restart by re-folding the journal from `open.first_ref`),
the change sets awaiting a point are the range [`rp_first_changeset`, `next_changeset`), and the
hot regions of the metrics window are memory only (a restarted worker counts them from where it
resumed; they feed telemetry, never a decision).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .block_refs import BlockRefs


@dataclass
class OpenSubInterval:
    """Writes folded since the last seal; `first_ref` is the journal offset of the first one."""

    started_at: float
    first_ref: int = -1
    first_seq: int = -1
    last_seq: int = -1
    bytes: int = 0
    oldest_write_us: int = 0


@dataclass
class MetricsWindow:
    started_at: float
    writes: int = 0
    bytes_written: int = 0
    bytes_shipped: int = 0
    resync_requests: int = 0
    dead_letters: int = 0
    fenced_events: int = 0
    hot_regions: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "hot_regions"}


@dataclass
class VolumeState:
    volume: str
    block_size: int
    size: int
    epoch: int = -1
    last_seq: int = -1
    next_changeset: int = 1
    next_rp: int = 1
    last_rp: int | None = None
    rp_started_at: float = 0.0
    rp_first_changeset: int | None = None
    """the first change set sealed since the last point (None: none awaits a point)"""
    epochs_seen: int = 0
    duplicates: int = 0
    skipped_seqs: int = 0
    """seqs a tracker's new epoch skipped: assigned, never confirmed, their blocks published again"""
    generation: int = 0
    """the highest generation the volume's log has shown (admission.py)"""
    seq_restart: bool = False
    """a new generation was adopted: its first write starts the seqs again"""
    recent: bytearray = field(default_factory=bytearray)
    """the fingerprints of the last folded seqs, a fixed size (admission.remember); hex in the JSON"""
    open: OpenSubInterval | None = None
    window: MetricsWindow | None = None
    refs: BlockRefs = field(default_factory=BlockRefs, compare=False, repr=False)
    """the open sub-interval's dirty blocks (memory only)"""

    @property
    def needs_ticks(self) -> bool:
        """Ticks can change this volume: a sub-interval to seal, a point to cut, a window to emit."""
        return self.open is not None or self.rp_first_changeset is not None or self.window is not None

    def dumps(self) -> bytes:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("open", "window", "refs")}
        data["open"] = asdict(self.open) if self.open else None
        data["window"] = self.window.to_json() if self.window else None
        data["recent"] = self.recent.hex()
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> VolumeState:
        data = json.loads(raw)
        open_json = data.pop("open")
        window_json = data.pop("window")
        recent = bytearray.fromhex(data.pop("recent", ""))
        state = cls(**data, recent=recent)
        state.open = OpenSubInterval(**open_json) if open_json else None
        state.window = MetricsWindow(**window_json) if window_json else None
        return state
