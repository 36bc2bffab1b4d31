"""The few invariants the constructors check that an Avro schema cannot state (all O(1))."""

from __future__ import annotations

from ..exceptions import InvalidRecordError

CHECKSUM_BYTES = 8
"""xxh3-64 digests travel as 8 bytes (big-endian)."""


def check_extent(record_type: str, volume: str, offset: int, length: int) -> None:
    """Offsets and lengths of a volume's bytes are never negative."""
    if offset < 0 or length < 0:
        raise InvalidRecordError(
            f"{record_type} of volume {volume} at offset {offset}, length {length}: offset and length must be "
            "zero or more; fix the caller that computed them"
        )


def check_checksum(record_type: str, volume: str, offset: int, checksum: bytes) -> None:
    if len(checksum) != CHECKSUM_BYTES:
        raise InvalidRecordError(
            f"{record_type} of volume {volume} at offset {offset}: checksum is {len(checksum)} bytes, an xxh3-64 "
            f"digest is {CHECKSUM_BYTES} (xxhash.xxh3_64_digest)"
        )
