"""What a tracker adds to the events it publishes: compressed data and its clock.

The records themselves are built by `tidemark.schemas.records` (BlockWrite by the shipper's fast
encoder, `producers/blockwrite_encoder.py`, tested byte-equal to `records.block_write`).
"""

from __future__ import annotations

import time
from enum import StrEnum

import lz4.frame
import zstandard


class Compression(StrEnum):
    NONE = "none"
    LZ4 = "lz4"
    ZSTD = "zstd"


_ZSTD = zstandard.ZstdCompressor(level=3)


def compress(data: bytes | memoryview, compression: Compression) -> tuple[str, bytes | memoryview]:
    """Return the schema's compression symbol and the payload. Keeps raw data (as given, not
    copied) when it does not shrink."""
    if compression is Compression.NONE or not data:
        return "NONE", data
    packed = lz4.frame.compress(data) if compression is Compression.LZ4 else _ZSTD.compress(data)
    if len(packed) >= len(data):
        return "NONE", data
    return compression.name, packed


def now_micros() -> int:
    return time.time_ns() // 1000
