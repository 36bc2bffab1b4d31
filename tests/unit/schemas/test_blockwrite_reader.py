"""The C BlockWrite reader decodes exactly as fastavro does, and refuses at least what it refuses.

Two codecs over the bundled schemas: one with the C reader, one with fastavro alone. Every record
round-trips to the same dict; every mutation of a valid event gives the same record from both or
`DecodeError` from the C reader, which refuses some bytes fastavro reads (a negative enum index).
"""

from __future__ import annotations

from typing import Any

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.schemas.blockwrite_reader import FINGERPRINT, native_decode
from tidemark.schemas.codec import HEADER, Codec
from tidemark.schemas.exceptions import DecodeError

NATIVE = Codec()
FASTAVRO = Codec(native=False)
LONGS = st.integers(-(2**63), 2**63 - 1)

records = st.fixed_dictionaries(
    {
        "volume": st.text(max_size=40),
        "epoch": LONGS,
        "seq": LONGS,
        "timestamp": LONGS,
        "offset": LONGS,
        "length": LONGS,
        "op": st.sampled_from(["WRITE", "ZERO", "TRIM"]),
        "compression": st.sampled_from(["NONE", "LZ4", "ZSTD"]),
        "data": st.binary(max_size=5000),
        "checksum": st.binary(max_size=16),
        "generation": LONGS,
    }
)


def decoded(codec: Codec, event: bytes) -> tuple[str, Any] | type[DecodeError]:
    try:
        return codec.decode(event)
    except DecodeError:
        return DecodeError


def test_the_c_reader_reads_the_bundled_schema() -> None:
    """Fails when BlockWrite.avsc changes: update `_blockwrite_reader.c` and FINGERPRINT with it."""
    assert NATIVE.fingerprint_of("BlockWrite") == FINGERPRINT, (
        "BlockWrite.avsc changed: make schemas/_blockwrite_reader.c read the new layout, then set "
        f"blockwrite_reader.FINGERPRINT to {NATIVE.fingerprint_of('BlockWrite'):#x}"
    )


pytestmark = pytest.mark.skipif(native_decode is None, reason="the C reader was not built (no compiler)")


@given(records)
def test_records_round_trip_alike(record: dict[str, Any]) -> None:
    event = FASTAVRO.encode("BlockWrite", record)
    assert NATIVE.decode(event) == FASTAVRO.decode(event) == ("BlockWrite", record)


@settings(max_examples=300)
@given(record=records, data=st.data())
def test_mutations_decode_alike(record: dict[str, Any], data: st.DataObject) -> None:
    event = bytearray(FASTAVRO.encode("BlockWrite", record))
    body = len(event) - HEADER.size
    how = data.draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            at = HEADER.size + data.draw(st.integers(0, body - 1))
            event[at] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        del event[HEADER.size + data.draw(st.integers(0, body - 1)) :]
    elif how == "extend":
        event += data.draw(st.binary(min_size=1, max_size=20))
    else:
        at = HEADER.size + data.draw(st.integers(0, body))
        event[at:at] = data.draw(st.binary(min_size=1, max_size=12))
    native, reference = decoded(NATIVE, bytes(event)), decoded(FASTAVRO, bytes(event))
    if native is DecodeError and reference is not DecodeError:
        # stricter than fastavro only where the bytes are not the record's encoding: fastavro reads
        # a negative enum index as a symbol from the end (-1 is TRIM); the C reader refuses it
        assert isinstance(reference, tuple)
        assert FASTAVRO.encode("BlockWrite", reference[1]) != bytes(event)
    else:
        assert native == reference


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x80" * 11, "more than 10 bytes"),
        (b"\xff" * 9 + b"\x02", "beyond 64 bits"),
        (b"\x02a" + b"\x00" * 5 + b"\x06", "field op: enum index 3 out of range"),
        (b"\x01", "length -1"),
        (b"\x08ab", "length 4, but 2 bytes are left"),
        (b"\x02\xff", "invalid UTF-8"),
    ],
)
def test_corrupt_bodies_name_what_is_wrong(body: bytes, reason: str) -> None:
    event = NATIVE.encode("BlockWrite", _sample())[: HEADER.size] + body
    with pytest.raises(DecodeError, match=reason):
        NATIVE.decode(event)


def test_trailing_bytes_and_a_bad_start_are_refused() -> None:
    event = NATIVE.encode("BlockWrite", _sample())
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        NATIVE.decode(event + b"\x00")
    assert native_decode is not None
    with pytest.raises(ValueError, match="body start"):
        native_decode(event, len(event) + 1)


def _sample() -> dict[str, Any]:
    data = b"x" * 4096
    return {
        "volume": "vol1", "epoch": 1, "seq": 2, "timestamp": 3, "offset": 4096, "length": 4096, "op": "WRITE",
        "compression": "NONE", "data": data, "checksum": xxhash.xxh3_64_digest(data), "generation": 0,
    }  # fmt: skip
