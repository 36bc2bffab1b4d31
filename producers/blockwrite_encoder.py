"""A hand-rolled Avro writer for BlockWrite: the same bytes as the codec, without its generic walk.

The shipper encodes every event it publishes, so this is on the write path's critical thread.
`tests/unit/producers/test_blockwrite_encoder.py` checks it byte-equal against
`tidemark.schemas.codec.Codec.encode` (hypothesis) and decodable by it.

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

from tidemark.schemas.codec import HEADER, MARKER, Codec

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

    def __init__(self, codec: Codec, volume: str) -> None:
        name = volume.encode()
        self._prefix = HEADER.pack(MARKER, codec.fingerprint_of("BlockWrite")) + zigzag_varint(len(name)) + name

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
