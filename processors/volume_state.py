"""Per-volume processor state, kept in the partition store as JSON (small: no block data here)."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pyroaring import BitMap


@dataclass
class OpenSubInterval:
    """Writes folded since the last seal. The blocks themselves live in the open-blocks table."""

    started_at: float
    first_seq: int = -1
    last_seq: int = -1
    bytes: int = 0
    oldest_write_us: int = 0
    blocks: BitMap = field(default_factory=BitMap)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["blocks"] = base64.b64encode(self.blocks.serialize()).decode()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpenSubInterval:
        blocks = BitMap.deserialize(base64.b64decode(data.pop("blocks")))
        return cls(blocks=blocks, **data)


@dataclass
class MetricsWindow:
    started_at: float
    writes: int = 0
    bytes_written: int = 0
    bytes_shipped: int = 0
    resync_requests: int = 0
    dead_letters: int = 0
    hot_regions: dict[str, int] = field(default_factory=dict)


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
    changesets_since_rp: list[int] = field(default_factory=list)
    epochs_seen: int = 0
    duplicates: int = 0
    open: OpenSubInterval | None = None
    window: MetricsWindow | None = None

    def dumps(self) -> bytes:
        data = asdict(self)
        data["open"] = self.open.to_json() if self.open else None
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> VolumeState:
        data = json.loads(raw)
        open_json = data.pop("open")
        window_json = data.pop("window")
        state = cls(**data)
        state.open = OpenSubInterval.from_json(open_json) if open_json else None
        state.window = MetricsWindow(**window_json) if window_json else None
        return state
