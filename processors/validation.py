"""Checks a BlockWrite must pass before it is folded; failures become dead letters."""

from __future__ import annotations

from typing import Any

import xxhash

from tidemark.core.decoding import decompress
from tidemark.core.volumes import VolumeSpec

from .exceptions import InvalidEventError


def validate_write(record: dict[str, Any], spec: VolumeSpec | None) -> bytes:
    """Return the raw data of a valid write, or raise InvalidEventError saying what is wrong."""
    volume, seq, offset, length = record["volume"], record["seq"], record["offset"], record["length"]
    where = f"volume {volume} seq {seq} offset {offset} length {length}"
    if spec is None:
        raise InvalidEventError(f"{where}: unknown volume; register it with `tidemark volume add`")
    if offset < 0 or length <= 0 or offset + length > spec.size:
        raise InvalidEventError(f"{where}: extent outside the volume (size {spec.size})")
    if offset % spec.block_size or length % spec.block_size:
        raise InvalidEventError(f"{where}: not aligned to the block size {spec.block_size}")
    if record["op"] != "WRITE":
        return b""
    data = decompress(record["data"], record["compression"], length, where)
    if len(data) != length:
        raise InvalidEventError(f"{where}: carries {len(data)} bytes of data")
    if xxhash.xxh3_64_digest(data) != record["checksum"]:
        raise InvalidEventError(f"{where}: checksum mismatch (data corrupted in transit)")
    return data
