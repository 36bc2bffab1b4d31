"""Where a seal finds the data of the writes it ships: `WriteSource`, keyed by journal offset."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

WRITE_OVERHEAD_BYTES = 128
"""What a cached write costs besides its data (a ZERO or TRIM carries none)."""


class WriteData(NamedTuple):
    """A validated BlockWrite as the folding needs it: `data` is raw (decompressed), WRITE only.

    Immutable; a named tuple rather than a dataclass because one is made per folded write.
    """

    op: str
    offset: int
    length: int
    data: bytes

    @property
    def cost(self) -> int:
        return len(self.data) + WRITE_OVERHEAD_BYTES


class WriteSource(Protocol):
    def writes(self, refs: Sequence[int]) -> Iterator[tuple[int, WriteData]]:
        """The write at each journal offset of `refs` (ascending), in that order, one at a time."""
        ...
