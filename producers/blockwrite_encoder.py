"""A hand-rolled Avro writer for BlockWrite: the same bytes as the codec, without its generic walk.

The shipper encodes every event it publishes, so this is on the write path's critical thread.
The same steps run in C (`_blockwrite.c`) when the extension was built: at 4 KiB the Python steps
took 22 us an event on the test machine, most of the ship thread's time, and they share the
interpreter lock with the client's requests. `tests/unit/producers/test_blockwrite_encoder.py`
checks both byte-equal against `tidemark.schemas.codec.Codec.encode` (hypothesis) and decodable
by it.

Layout (Avro single-object encoding, then the record body in schema field order):

    C3 01                      marker
    fingerprint                8 bytes, CRC-64-AVRO of BlockWrite's canonical schema, little-endian
    volume                     long length (zigzag varint) + UTF-8 bytes
    epoch, seq, timestamp,
    offset, length             longs (zigzag varint)
    op                         enum index as a zigzag varint (WRITE 0, ZERO 1, TRIM 2)
    compression                enum index as a zigzag varint (NONE 0, LZ4 1, ZSTD 2)
    data                       long length + bytes
    checksum                   long length (8) + 8 bytes
    generation                 long
"""

from __future__ import annotations

from collections.abc import Callable

from tidemark.schemas.codec import HEADER, MARKER, Codec

NativeEncode = Callable[[bytes, int, int, int, int, int, int, int, "bytes | memoryview", bytes, int], bytes]
native_encode: NativeEncode | None
try:
    from tidemark.producers._blockwrite import encode as _native
except ImportError:  # built without a C compiler: the Python steps below
    native_encode = None
else:
    native_encode = _native

OPS = {"WRITE": 0, "ZERO": 1, "TRIM": 2}
COMPRESSIONS = {"NONE": 0, "LZ4": 1, "ZSTD": 2}


def zigzag_varint(value: int) -> bytes:
    """Avro's `long`: zigzag, then 7 bits per byte, least significant group first."""
    encoded = (value << 1) ^ (value >> 63)
    out = bytearray()
    while encoded > 0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)
    return bytes(out)


class BlockWriteEncoder:
    """Encodes BlockWrite events of one volume; the header and the volume field are built once."""

    def __init__(self, codec: Codec, volume: str, *, native: bool = True) -> None:
        """`native`: use the C steps when built (False: the Python steps, for the tests)."""
        name = volume.encode()
        self._prefix = HEADER.pack(MARKER, codec.fingerprint_of("BlockWrite")) + zigzag_varint(len(name)) + name
        self._native = native_encode if native else None

    def encode(
        self,
        *,
        epoch: int,
        seq: int,
        timestamp: int,
        offset: int,
        length: int,
        op: str,
        compression: str,
        data: bytes | memoryview,
        checksum: bytes,
        generation: int = 0,
    ) -> bytes:
        if self._native is not None:
            return self._native(
                self._prefix, epoch, seq, timestamp, offset, length, OPS[op], COMPRESSIONS[compression], data,
                checksum, generation,
            )  # fmt: skip
        varint = zigzag_varint
        return b"".join(
            (
                self._prefix,
                varint(epoch),
                varint(seq),
                varint(timestamp),
                varint(offset),
                varint(length),
                varint(OPS[op]),
                varint(COMPRESSIONS[compression]),
                varint(len(data)),
                data,
                varint(len(checksum)),
                checksum,
                varint(generation),
            )
        )
