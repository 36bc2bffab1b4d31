"""The hand-rolled BlockWrite writer produces exactly the bytes of the typed constructor through the codec."""

from __future__ import annotations

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from tidemark.producers.blockwrite_encoder import BlockWriteEncoder, native_encode, zigzag_varint
from tidemark.schemas.codec import default_codec
from tidemark.schemas.records import block_write

LONGS = st.integers(-(2**63), 2**63 - 1)
NON_NEGATIVE = st.integers(0, 2**63 - 1)


@given(LONGS)
def test_longs_are_avro_zigzag_varints(value: int) -> None:
    import io

    import fastavro

    out = io.BytesIO()
    fastavro.schemaless_writer(out, {"type": "long"}, value)
    assert zigzag_varint(value) == out.getvalue()


@given(
    volume=st.from_regex(r"[a-z][a-z0-9._-]{0,40}", fullmatch=True),
    epoch=LONGS,
    seq=LONGS,
    timestamp=LONGS,
    offset=NON_NEGATIVE,
    length=NON_NEGATIVE,
    op=st.sampled_from(["WRITE", "ZERO", "TRIM"]),
    compression=st.sampled_from(["NONE", "LZ4", "ZSTD"]),
    data=st.binary(max_size=5000),
    generation=LONGS,
    native=st.booleans() if native_encode is not None else st.just(False),
)
def test_the_encoder_writes_the_codecs_bytes(
    native: bool,
    volume: str, epoch: int, seq: int, timestamp: int, offset: int, length: int, op: str, compression: str,
    data: bytes, generation: int,
) -> None:  # fmt: skip
    codec = default_codec()
    record = block_write(
        volume=volume, epoch=epoch, seq=seq, timestamp=timestamp, offset=offset, length=length, op=op,
        compression=compression, data=data, checksum=xxhash.xxh3_64_digest(data), generation=generation,
    )  # fmt: skip
    encoded = BlockWriteEncoder(codec, volume, native=native).encode(
        epoch=epoch, seq=seq, timestamp=timestamp, offset=offset, length=length, op=op, compression=compression,
        data=data, checksum=record["checksum"], generation=generation,
    )  # fmt: skip
    assert encoded == codec.encode("BlockWrite", record)
    assert codec.decode(encoded) == ("BlockWrite", record)


@pytest.mark.skipif(native_encode is None, reason="the C extension was not built (no compiler)")
def test_a_value_past_avros_long_is_refused() -> None:
    encoder = BlockWriteEncoder(default_codec(), "v")
    with pytest.raises(OverflowError):
        encoder.encode(
            epoch=2**63, seq=0, timestamp=0, offset=0, length=0, op="WRITE", compression="NONE", data=b"",
            checksum=b"", generation=0,
        )  # fmt: skip
