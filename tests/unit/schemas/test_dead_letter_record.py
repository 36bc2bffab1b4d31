"""Dead letters always fit: the value is cut, its length and xxh3 say what it was."""

from __future__ import annotations

import xxhash

from tidemark.schemas.codec import default_codec
from tidemark.schemas.records import MAX_VALUE_BYTES, DeadLetter, dead_letter


def _record(value: bytes) -> DeadLetter:
    return dead_letter(
        stage="processor", reason="too large", topic="t", partition=0, offset=7,
        key=b"vm1", value=value, volume="vm1", timestamp=1,
    )  # fmt: skip


def test_large_value_is_cut_with_length_and_checksum() -> None:
    value = bytes(range(256)) * (MAX_VALUE_BYTES // 64)
    record = _record(value)
    assert record["value"] == value[:MAX_VALUE_BYTES]
    assert record["value_length"] == len(value)
    assert record["value_xxh3"] == xxhash.xxh3_64_digest(value)
    encoded = default_codec().encode("DeadLetter", record)
    assert len(encoded) < MAX_VALUE_BYTES + 1024
    assert default_codec().decode(encoded)[1]["value_length"] == len(value)


def test_small_value_is_kept_whole() -> None:
    record = _record(b"abc")
    assert record["value"] == b"abc"
    assert record["value_length"] == 3
