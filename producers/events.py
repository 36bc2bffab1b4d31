"""Building the BlockWrite and Marker records a tracker publishes."""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Any

import lz4.frame
import xxhash
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


def block_write(
    volume: str, epoch: int, seq: int, offset: int, length: int, op: str, data: bytes, compression: Compression
) -> dict[str, Any]:
    symbol, payload = compress(data, compression)
    return {
        "volume": volume,
        "epoch": epoch,
        "seq": seq,
        "timestamp": now_micros(),
        "offset": offset,
        "length": length,
        "op": op,
        "compression": symbol,
        "data": payload,
        "checksum": xxhash.xxh3_64_digest(data),
    }


def marker(
    volume: str, kind: str, epoch: int | None, after_seq: int | None, label: str | None, generation: int = 0
) -> dict[str, Any]:
    return {
        "volume": volume,
        "marker_id": str(uuid.uuid4()),
        "kind": kind,
        "timestamp": now_micros(),
        "epoch": epoch,
        "after_seq": after_seq,
        "label": label,
        "group": None,
        "barrier_id": None,
        "generation": generation,
    }
