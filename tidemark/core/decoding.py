"""Bounded decompression of event data (BlockWrite, Extent): never more output than the event declares.

One mechanism for both stages that decompress: the processor (BlockWrite data) and the mirror
(Extent data).

A compressed frame says in its own header how much it will expand to (zstd's Frame_Content_Size
and Window_Descriptor, lz4's block size); none of that is trusted. Decoding streams with a read
bounded by `limit + 1` bytes (the event's declared `length` plus one, to tell "exactly `limit`"
from "more"), and the zstd decoder refuses a window larger than `window_limit(limit)`, so a frame
declaring 4 GiB allocates at most about `limit` plus a few MiB whatever its header says.
Every failure is a `DecodeBombError` or a `DecompressError` naming `where` (volume, seq or extent);
both are schema `DecodeError`s, so a stage that dead-letters undecodable events dead-letters these.
"""

from __future__ import annotations

import io

import lz4.frame
import zstandard

from tidemark.schemas.exceptions import DecodeError

MAX_WRITE_BYTES = 64 << 20
"""The largest `length` a compressed BlockWrite may declare (NBD requests are at most 32 MiB)."""

MIN_WINDOW_BYTES = 1 << 20
"""The zstd window always allowed; a larger one only up to the declared length (power of two)."""


class DecompressError(DecodeError):
    """Compressed data that is corrupt, truncated or of an unknown compression."""


class DecodeBombError(DecompressError):
    """Compressed data that expands past the length its event declares."""


def window_limit(limit: int) -> int:
    """The largest zstd window a frame of `limit` raw bytes may need: the next power of two, floored."""
    return max(MIN_WINDOW_BYTES, 1 << max(limit - 1, 1).bit_length())


def decompress(data: bytes, compression: str, limit: int, where: str) -> bytes:
    """The raw bytes of `data`, at most `limit` of them; raises when there are more or they are corrupt."""
    if compression == "NONE":
        return data
    if compression not in ("LZ4", "ZSTD"):
        raise DecompressError(f"{where}: unknown compression {compression!r}")
    if limit > MAX_WRITE_BYTES:
        raise DecodeBombError(
            f"{where}: declares {limit} bytes of {compression} data, over the {MAX_WRITE_BYTES} a write may "
            "carry compressed; split the write or send it uncompressed"
        )
    try:
        raw = _zstd(data, limit) if compression == "ZSTD" else _lz4(data, limit)
    except DecompressError:
        raise
    except Exception as exc:  # lz4 and zstd raise their own error types
        raise DecompressError(f"{where}: {compression} data does not decompress: {exc}") from exc
    if len(raw) > limit:
        raise DecodeBombError(
            f"{where}: {compression} data expands past its declared length {limit} (decompression bomb or "
            "wrong length); fix the producer"
        )
    return raw


def _zstd(data: bytes, limit: int) -> bytes:
    decompressor = zstandard.ZstdDecompressor(max_window_size=window_limit(limit))
    with decompressor.stream_reader(io.BytesIO(data), read_across_frames=False) as reader:
        return reader.read(limit + 1)


def _lz4(data: bytes, limit: int) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    raw: bytes = decompressor.decompress(data, max_length=limit + 1)
    if len(raw) <= limit and not decompressor.eof:
        raise DecompressError("the LZ4 frame is truncated")
    return raw
