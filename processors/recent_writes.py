"""A bounded cache of recently folded writes, so most seals read nothing back from Kafka.

FIFO by bytes: entries leave in the order they came once the data held passes `max_bytes`.
A seal needs the writes of the open sub-interval, which are the newest ones, so with the cache
larger than `subinterval_max_bytes` a seal normally finds them all here. Whether a write is
found here or read back from the journal never changes what is emitted (same bytes).
"""

from __future__ import annotations

from collections import OrderedDict

from .write_source import WriteData

DEFAULT_CACHE_BYTES = 48 << 20
"""Default bound of the cache (`ProcessorOptions.write_cache_bytes`): `FoldOptions.subinterval_max_bytes`
(32 MiB) plus room for the batch being handled and for writes partly overwritten in the sub-interval."""


class RecentWrites:
    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[int, int], WriteData] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, partition: int, offset: int, write: WriteData) -> None:
        if write.cost > self.max_bytes or (partition, offset) in self._entries:
            return
        self._entries[(partition, offset)] = write
        self.bytes += write.cost
        while self.bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self.bytes -= oldest.cost

    def get(self, partition: int, offset: int) -> WriteData | None:
        return self._entries.get((partition, offset))
