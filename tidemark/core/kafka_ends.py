"""Where a read of a topic stops: the pure bookkeeping of `kafka_io`, apart from any Kafka client.

A read covers, per partition, the offsets [start, end): `end` is captured when the read starts (the
high watermark, which a read_committed consumer is given as the last stable offset), so a topic
that keeps growing is still read to a definite end. Offsets inside the range can be missing: a
compacted topic drops records, and a transaction's commit or abort marker takes an offset of its
own that no consumer is handed. A partition is therefore done at the first of:
- a message at offset `end - 1` (the last one in the range), or beyond;
- the consumer's position (the next offset it would hand over) at `end` or beyond, which is how a
  marker at the end shows;
- the partition's end-of-file event (nothing more is readable now), for a range whose end lies
  beyond what the partition will ever hold.

Backwards reads go over windows: [high - w, high), then the 4w offsets before it, and so on down to
the low watermark (`tail_windows`), so finding something near the end costs the tail, not the topic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass
class ReadEnds:
    """The partitions of one read still open, and for each the next offset and the end (excluded).

    Invariant: a partition is in `positions` iff it is open, and then `positions[p] < ends[p]`."""

    ends: dict[int, int]
    positions: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, starts: Mapping[int, int], ends: Mapping[int, int]) -> ReadEnds:
        """A read of every partition in `starts` from its start to its end; a partition whose range
        is empty (start >= end) is done at once."""
        read = cls(dict(ends))
        for partition, start in starts.items():
            if start < read.ends[partition]:
                read.positions[partition] = start
        return read

    @property
    def done(self) -> bool:
        return not self.positions

    @property
    def open(self) -> list[int]:
        return sorted(self.positions)

    def take(self, partition: int, offset: int) -> bool:
        """A message at `offset`: True when it lies in the range (the caller hands it on). A message
        at or after the end closes the partition and is not taken; so does the range's last one."""
        position = self.positions.get(partition)
        if position is None:
            return False
        if offset >= self.ends[partition]:
            del self.positions[partition]
            return False
        if offset + 1 >= self.ends[partition]:
            del self.positions[partition]
        else:
            self.positions[partition] = max(position, offset + 1)
        return True

    def advance(self, partition: int, position: int) -> bool:
        """The consumer's position of `partition` (past a marker, say). True if it moved forward."""
        current = self.positions.get(partition)
        if current is None or position <= current:
            return False
        if position >= self.ends[partition]:
            del self.positions[partition]
        else:
            self.positions[partition] = position
        return True

    def reached_eof(self, partition: int) -> None:
        """The partition has nothing more to read now: it is done, wherever its range ends."""
        self.positions.pop(partition, None)


def tail_windows(low: int, high: int, first: int, growth: int = 4) -> Iterator[tuple[int, int]]:
    """The windows [start, end) of a backwards read of [low, high), newest first: the first holds
    `first` offsets and each next one `growth` times as many; together they cover [low, high)
    exactly, without overlap."""
    if first < 1 or growth < 1:
        raise ValueError(f"a tail window needs first >= 1 and growth >= 1 (got {first}, {growth})")
    end, window = high, first
    while end > low:
        start = max(low, end - window)
        yield start, end
        end, window = start, window * growth
