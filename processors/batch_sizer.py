"""How many messages to ask the consumer for, so a transaction's batch holds about `batch_bytes`.

The consumer hands a batch over as Python bytes, all of it at once, and only then can the
runner handle it: 500 writes of 256 KiB would be 128 MiB in memory, 500 of 4 KiB only 2 MiB.
The count follows the size of the largest recent message: a larger one is adopted at once, a
smaller one only as the estimate decays by `DECAY` per batch, so a batch holds about
`batch_bytes` whatever the write size. It can pass that once, when messages suddenly grow
(the batch was asked for before they arrived). Messages without data (ticks) teach it nothing.
Invariant: `1 <= count() <= max_count`.
"""

from __future__ import annotations

DEFAULT_BATCH_BYTES = 16 << 20
"""Block data to aim for per transaction (`ProcessorOptions.batch_bytes`)."""

DECAY = 0.9
"""Per batch, the size estimate falls to this fraction while no larger message comes."""


class BatchSizer:
    def __init__(self, max_count: int, batch_bytes: int) -> None:
        if max_count < 1 or batch_bytes < 1:
            raise ValueError(f"batch bounds must be positive: {max_count} messages, {batch_bytes} bytes")
        self.max_count = max_count
        self.batch_bytes = batch_bytes
        self.message_size = 0.0

    def count(self) -> int:
        """Messages to ask for next."""
        if self.message_size <= 0:
            return 1
        return max(1, min(self.max_count, int(self.batch_bytes // self.message_size)))

    def took(self, sizes: list[int]) -> None:
        """Record the sizes of a batch's messages (0 for a message without data)."""
        largest = max(sizes, default=0)
        if largest > 0:
            self.message_size = max(float(largest), self.message_size * DECAY)
