"""The key layout of the processor's state store (one RocksDB per writes partition, and its changelog).

Every key starts with a one-byte table tag and a NUL; volume names never contain NUL
(`tidemark.core.names.validate_name`). Integers are unsigned big-endian, so RocksDB keeps a
volume's change sets and their chunks in numeric order.

    s \\0 <volume>                                   VolumeState JSON (volume_state.py): constant size
    p \\0 <partition, ASCII decimal>                 JSON list of the volumes seen on that partition
    c \\0 <volume> \\0 <changeset u64> <chunk u32>   one chunk of a sealed change set's block checksums:
                                                    up to CHECKSUM_CHUNK_PAIRS pairs of
                                                    (block u64, xxh3-64 8 bytes), ascending block

No key holds block data: the data stays in the journal (see block_refs.py).
"""

from __future__ import annotations

import struct

_CHANGESET_CHUNK = struct.Struct(">QI")  # change set id (u64), chunk index (u32)


def volume_state_key(volume: str) -> bytes:
    return b"s\x00" + volume.encode()


def partition_key(partition: int) -> bytes:
    return b"p\x00%d" % partition


def checksums_key(volume: str, changeset: int, chunk: int) -> bytes:
    return b"c\x00" + volume.encode() + b"\x00" + _CHANGESET_CHUNK.pack(changeset, chunk)
