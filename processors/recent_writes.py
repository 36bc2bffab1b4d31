"""A bounded cache of recently folded writes, so most seals read nothing back from Kafka.

FIFO by bytes: entries leave in the order they came once the data held passes `max_bytes`.
A seal needs the writes of the open sub-interval, which are the newest ones, so with the cache
larger than `subinterval_max_bytes` a seal normally finds them all here. Whether a write is
found here or read back from the journal never changes what is emitted (same bytes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from .write_source import WRITE_OVERHEAD_BYTES, WriteData

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
        cost = len(write.data) + WRITE_OVERHEAD_BYTES  # = write.cost, without the property call per write
        key = (partition, offset)
        entries = self._entries
        if cost > self.max_bytes or key in entries:
            return
        entries[key] = write
        self.bytes += cost
        while self.bytes > self.max_bytes:
            _, oldest = entries.popitem(last=False)
            self.bytes -= len(oldest.data) + WRITE_OVERHEAD_BYTES

    def get(self, partition: int, offset: int) -> WriteData | None:
        return self._entries.get((partition, offset))

    def get_many(self, partition: int, offsets: Sequence[int]) -> list[WriteData | None]:
        """`get` of each offset, in order."""
        get = self._entries.get
        return [get((partition, offset)) for offset in offsets]
