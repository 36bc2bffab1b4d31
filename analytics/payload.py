"""The raw bytes of a BlockWrite (its `data`, decompressed), bounded by the write's length."""

from __future__ import annotations

from typing import Any

import lz4.frame
import zstandard

from .exceptions import PayloadError

_ZSTD = zstandard.ZstdDecompressor()


def raw_data(record: dict[str, Any]) -> bytes:
    """Decompress a WRITE's data; raises PayloadError naming the volume, seq and offset."""
    data: bytes = record["data"]
    compression = record["compression"]
    try:
        if compression == "LZ4":
            data = lz4.frame.decompress(data)
        elif compression == "ZSTD":
            data = _ZSTD.decompress(data, max_output_size=record["length"])
    except Exception as exc:  # lz4 and zstd raise their own error types
        raise PayloadError(
            f"volume {record['volume']} seq {record['seq']} offset {record['offset']}: "
            f"{compression} data does not decompress ({exc}); the tracker wrote a corrupt event"
        ) from exc
    return data
