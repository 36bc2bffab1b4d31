"""Fuzzing the event decoder: any bytes give a valid record or `DecodeError`, never another error.

Mutations start from valid events of every record type (bit flips, truncations, extensions,
spliced garbage) and from random bytes behind a valid header. A decoded record must re-encode:
whatever the decoder accepts is a well-formed event of its schema.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.schemas.codec import HEADER, MARKER, default_codec
from tidemark.schemas.exceptions import DecodeError

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("TIDEMARK_FUZZ_EXAMPLES", "40")) * 5
fuzz_settings = settings(max_examples=EXAMPLES, deadline=None)

NOW = int(time.time() * 1000)
DATA = bytes(range(256)) * 16

SAMPLES: dict[str, dict[str, Any]] = {
    "BlockWrite": {
        "volume": "vol1", "epoch": 1, "seq": 42, "timestamp": NOW * 1000, "offset": 8192, "length": len(DATA),
        "op": "WRITE", "compression": "NONE", "data": DATA, "checksum": xxhash.xxh3_64_digest(DATA), "generation": 0,
    },
    "Marker": {
        "volume": "vol1", "marker_id": "m-1", "kind": "REQUESTED", "timestamp": NOW * 1000, "epoch": 1,
        "after_seq": 41, "label": "nightly", "group": None, "barrier_id": None, "generation": 0,
    },
    "Extent": {
        "volume": "vol1", "changeset_id": 3, "index": 0, "offset": 0, "length": len(DATA), "op": "WRITE",
        "compression": "NONE", "data": DATA, "checksum": xxhash.xxh3_64_digest(DATA),
    },
    "ChangeSetSealed": {
        "volume": "vol1", "changeset_id": 3, "epoch": 1, "seq_first": 1, "seq_last": 42, "extent_count": 1,
        "block_size": 4096, "block_count": 1, "bytes": 4096, "bitmap": b"\x3a\x30\x00\x00", "digest": bytes(8),
        "sealed_at": NOW, "reason": "CUT", "rp_id": 1, "generation": 2,
    },
    "ResyncRequest": {
        "volume": "vol1", "epoch": 1, "expected_seq": 5, "seen_seq": 9, "reason": "gap", "bitmap": None,
        "timestamp": NOW,
    },
    "VolumeMetrics": {
        "volume": "vol1", "window_start": NOW, "window_end": NOW + 1, "writes": 1, "bytes_written": 1,
        "bytes_shipped": 1, "writes_per_second": 1.0, "bytes_per_second": 1.0, "overwrite_ratio": 0.5,
        "hottest_extents": [{"offset": 0, "length": 4096, "writes": 3}], "rpo_lag_seconds": 0.1,
        "resync_requests": 0, "dead_letters": 0, "fenced_events": 0,
    },
}  # fmt: skip
VALID = {name: default_codec().encode(name, record) for name, record in SAMPLES.items()}


def _decode_or_reject(data: bytes) -> None:
    """The property: DecodeError, or a record that is a valid event of its type."""
    codec = default_codec()
    try:
        record_type, record = codec.decode(data)
    except DecodeError:
        return
    assert codec.decode(codec.encode(record_type, record)) == (record_type, record)


def test_every_sample_is_valid() -> None:
    assert set(SAMPLES) <= set(default_codec().record_types)
    for name, data in VALID.items():
        assert default_codec().decode(data) == (name, SAMPLES[name])


@fuzz_settings
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _decode_or_reject(data)


@fuzz_settings
@given(st.sampled_from(sorted(VALID)), st.binary(max_size=512))
def test_random_body_behind_a_valid_header(name: str, body: bytes) -> None:
    _decode_or_reject(VALID[name][: HEADER.size] + body)


@fuzz_settings
@given(st.sampled_from(sorted(VALID)), st.data())
def test_bit_flips(name: str, draw: st.DataObject) -> None:
    data = bytearray(VALID[name])
    for bit in draw.draw(st.lists(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=8)):
        data[bit // 8] ^= 1 << (bit % 8)
    _decode_or_reject(bytes(data))


@fuzz_settings
@given(st.sampled_from(sorted(VALID)), st.data())
def test_truncations_are_always_rejected(name: str, draw: st.DataObject) -> None:
    valid = VALID[name]
    cut = draw.draw(st.integers(0, len(valid) - 1))
    with pytest.raises(DecodeError):
        default_codec().decode(valid[:cut])


@fuzz_settings
@given(st.sampled_from(sorted(VALID)), st.binary(min_size=1, max_size=64))
def test_extensions_are_always_rejected(name: str, tail: bytes) -> None:
    with pytest.raises(DecodeError):
        default_codec().decode(VALID[name] + tail)


@fuzz_settings
@given(st.sampled_from(sorted(VALID)), st.data())
def test_spliced_garbage(name: str, draw: st.DataObject) -> None:
    valid = VALID[name]
    at = draw.draw(st.integers(HEADER.size, len(valid)))
    end = draw.draw(st.integers(at, len(valid)))
    garbage = draw.draw(st.binary(max_size=32))
    _decode_or_reject(valid[:at] + garbage + valid[end:])


@pytest.mark.parametrize("length", [1 << 62, (1 << 63) - 1, -(1 << 62)])
def test_huge_declared_lengths_are_rejected_without_allocating(length: int) -> None:
    """A varint string/bytes length far past the end of the message (zigzag encoded)."""
    zigzag = (length << 1) ^ (length >> 63)
    varint = bytearray()
    while True:
        byte, zigzag = zigzag & 0x7F, zigzag >> 7
        varint.append(byte | (0x80 if zigzag else 0))
        if not zigzag:
            break
    header = VALID["BlockWrite"][: HEADER.size]
    assert header[:2] == MARKER
    with pytest.raises(DecodeError):
        default_codec().decode(header + bytes(varint) + b"vol1")
