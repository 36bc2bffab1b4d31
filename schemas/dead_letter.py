"""The one constructor of DeadLetter records: every stage sends bad input through it.

A dead letter must always fit in one Kafka message, whatever it carries: the raw value is kept
only up to `MAX_VALUE_BYTES`, with the whole value's length and xxh3-64 beside it, so an
operator can still tell which message it was and whether a copy elsewhere is the same bytes.
"""

from __future__ import annotations

from typing import Any

import xxhash

MAX_VALUE_BYTES = 64 * 1024
"""Bytes of the raw value kept in a dead letter; `value_length` says how long it was."""


def dead_letter_record(
    *,
    stage: str,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    volume: str | None,
    timestamp_ms: int,
) -> dict[str, Any]:
    """A DeadLetter record (schemas/DeadLetter.avsc) with the value cut to MAX_VALUE_BYTES."""
    raw = value or b""
    return {
        "stage": stage,
        "reason": reason,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key[:MAX_VALUE_BYTES] if key else key,
        "value": bytes(raw[:MAX_VALUE_BYTES]),
        "volume": volume,
        "timestamp": timestamp_ms,
        "value_length": len(raw),
        "value_xxh3": xxhash.xxh3_64_digest(raw),
    }
