"""Checks a BlockWrite must pass before it is folded; failures become dead letters."""

from __future__ import annotations

from typing import Any

import xxhash

from tidemark.core.decoding import decompress
from tidemark.core.volumes import VolumeSpec

from .exceptions import InvalidEventError


def validate_write(record: dict[str, Any], spec: VolumeSpec | None) -> bytes:
    """Return the raw data of a valid write, or raise InvalidEventError saying what is wrong."""
    offset, length = record["offset"], record["length"]
    if spec is None:
        raise InvalidEventError(f"{_where(record)}: unknown volume; register it with `tidemark volume add`")
    if offset < 0 or length <= 0 or offset + length > spec.size:
        raise InvalidEventError(f"{_where(record)}: extent outside the volume (size {spec.size})")
    if offset % spec.block_size or length % spec.block_size:
        raise InvalidEventError(f"{_where(record)}: not aligned to the block size {spec.block_size}")
    if record["op"] != "WRITE":
        return b""
    compression = record["compression"]
    # decompress() returns NONE data as it is; the call (and the message naming the write) only when needed
    data = record["data"] if compression == "NONE" else decompress(record["data"], compression, length, _where(record))
    if len(data) != length:
        raise InvalidEventError(f"{_where(record)}: carries {len(data)} bytes of data")
    if xxhash.xxh3_64_digest(data) != record["checksum"]:
        raise InvalidEventError(f"{_where(record)}: checksum mismatch (data corrupted in transit)")
    return data


def _where(record: dict[str, Any]) -> str:
    """The write as error messages name it."""
    return f"volume {record['volume']} seq {record['seq']} offset {record['offset']} length {record['length']}"
