"""Tumbling windows of one volume's writes, in message time (the broker's append timestamps).

A window covers [start_ms, start_ms + length_ms) with start_ms a multiple of length_ms. It counts
writes, bytes, a write-size histogram (power-of-two buckets), the overwrite ratio (share of block
writes that rewrite a block already written in the same window), writes per 1 MiB region (for
the hot regions and the heatmap) and the entropy samples of the detector (`last_low_seq`: the
last low-entropy sample before the window's first high-entropy one; `latest_low_seq`: the last
low-entropy sample at all). A closed window is a `WindowSummary`: plain JSON, a bounded size
whatever the write rate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pyroaring import BitMap

REGION_BYTES = 1 << 20


def size_bucket(length: int) -> int:
    """The histogram bucket of a write: the smallest power of two >= length (4096, 65536, ...)."""
    return 1 << max(0, (length - 1).bit_length())


@dataclass
class OpenWindow:
    start_ms: int
    length_ms: int
    writes: int = 0
    bytes: int = 0
    block_writes: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    sizes: Counter[int] = field(default_factory=Counter)
    regions: Counter[int] = field(default_factory=Counter)
    blocks: BitMap = field(default_factory=BitMap)
    samples: int = 0
    high: int = 0
    entropy_sum: float = 0.0
    first_high_seq: int | None = None
    last_low_seq: int | None = None
    latest_low_seq: int | None = None

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.length_ms

    def add_write(self, seq: int, offset: int, length: int, block_size: int) -> None:
        self.writes += 1
        self.bytes += length
        self.first_seq = seq if self.first_seq is None else self.first_seq
        self.last_seq = seq
        self.sizes[size_bucket(length)] += 1
        first, end = offset // block_size, -(-(offset + length) // block_size)
        self.block_writes += end - first
        self.blocks.add_range(first, end)
        for region in range(offset // REGION_BYTES, (offset + length - 1) // REGION_BYTES + 1):
            self.regions[region] += 1

    def add_sample(self, seq: int, entropy: float, high_bits: float) -> None:
        self.samples += 1
        self.entropy_sum += entropy
        if entropy >= high_bits:
            self.high += 1
            if self.first_high_seq is None:
                self.first_high_seq = seq
        else:
            self.latest_low_seq = seq
            if self.first_high_seq is None:
                self.last_low_seq = seq

    def heat(self, volume_size: int, buckets: int) -> list[int]:
        """Writes per slice of the address space: `buckets` equal slices of `volume_size` (or of
        the highest region written, while the size is unknown)."""
        span = volume_size or (max(self.regions, default=0) + 1) * REGION_BYTES
        heat = [0] * buckets
        for region, n in self.regions.items():
            heat[min(buckets - 1, region * REGION_BYTES * buckets // span)] += n
        return heat

    def summary(self, hot_regions: int, volume_size: int, buckets: int) -> dict[str, Any]:
        """The closed window as JSON (keys are strings, values numbers or lists), bounded in size."""
        seconds = self.length_ms / 1000
        unique = len(self.blocks)
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "writes": self.writes,
            "bytes": self.bytes,
            "iops": self.writes / seconds,
            "bytes_per_second": self.bytes / seconds,
            "overwrite_ratio": 1 - unique / self.block_writes if self.block_writes else 0.0,
            "sizes": {str(size): count for size, count in sorted(self.sizes.items())},
            "hot_regions": [[region * REGION_BYTES, n] for region, n in self.regions.most_common(hot_regions)],
            "heat": self.heat(volume_size, buckets),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "samples": self.samples,
            "high_entropy": self.high,
            "high_fraction": self.high / self.samples if self.samples else 0.0,
            "mean_entropy": self.entropy_sum / self.samples if self.samples else 0.0,
            "first_high_seq": self.first_high_seq,
            "last_low_seq": self.last_low_seq,
            "latest_low_seq": self.latest_low_seq,
        }


def window_start(timestamp_ms: int, length_ms: int) -> int:
    return timestamp_ms - timestamp_ms % length_ms
