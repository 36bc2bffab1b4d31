"""Bounded decoding: crafted zstd and lz4 frames never expand past the write's declared length.

The peak memory is measured in a fresh interpreter (ru_maxrss), because zstd and lz4 allocate
outside Python's allocator, which tracemalloc does not see.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lz4.frame
import pytest
import xxhash
import zstandard

from tidemark.core.decoding import DecodeBombError, DecompressError, decompress
from tidemark.core.volumes import VolumeSpec
from tidemark.processors.validation import validate_write

BLOCK = 4096
BOMB_BYTES = 512 << 20
RSS_BOUND_MIB = 48

_PEAK = """
import json, resource, sys
from tidemark.processors.validation import validate_write
from tidemark.core.volumes import VolumeSpec
record = {"volume": "v", "seq": 7, "offset": 0, "length": 4096, "op": "WRITE", "compression": sys.argv[2],
          "data": open(sys.argv[1], "rb").read(), "checksum": bytes(8)}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    validate_write(record, VolumeSpec("v", 1 << 30))
    reason = None
except Exception as exc:
    reason = type(exc).__name__ + ": " + str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kib": after - before, "reason": reason}))
"""


def _zeros_frame(compressor: zstandard.ZstdCompressor | None, total: int) -> bytes:
    """A real frame of `total` zero bytes, compressed in 1 MiB steps (never held whole)."""
    zero = bytes(1 << 20)
    if compressor is not None:
        cobj = compressor.compressobj(size=total)
        parts = [cobj.compress(zero) for _ in range(total // len(zero))]
        return b"".join(parts) + cobj.flush()
    lz4c = lz4.frame.LZ4FrameCompressor()
    parts = [lz4c.begin()] + [lz4c.compress(zero) for _ in range(total // len(zero))]
    return b"".join(parts) + lz4c.flush()


def _lying_zstd_frame() -> bytes:
    """4 KiB of zeros whose frame header declares 0xFFFFFFFF bytes of content (single segment)."""
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=False).compress(bytes(BLOCK)))
    descriptor = frame[4]
    assert descriptor >> 6 == 1 and descriptor & 0x20, "a 2-byte content size, single segment"
    return bytes(frame[:4]) + bytes([(descriptor & 0x3F) | 0x80]) + b"\xff\xff\xff\xff" + bytes(frame[7:])


def _peak(tmp_path: Path, frame: bytes, compression: str) -> dict[str, object]:
    path = tmp_path / "frame"
    path.write_bytes(frame)
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path), compression], check=True, capture_output=True, text=True, timeout=120
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize("compression", ["ZSTD", "LZ4"])
def test_a_frame_of_512_mib_declared_as_4_kib_is_refused_without_allocating_it(
    tmp_path: Path, compression: str
) -> None:
    compressor = zstandard.ZstdCompressor(level=1) if compression == "ZSTD" else None
    frame = _zeros_frame(compressor, BOMB_BYTES)
    assert len(frame) < BOMB_BYTES // 200
    result = _peak(tmp_path, frame, compression)
    assert result["reason"] is not None and "expands past its declared length 4096" in str(result["reason"])
    assert "DecodeBombError" in str(result["reason"]) and "seq 7" in str(result["reason"])
    assert int(str(result["grew_kib"])) < RSS_BOUND_MIB * 1024, result


def test_a_zstd_header_declaring_4_gib_allocates_nothing_of_it(tmp_path: Path) -> None:
    frame = _lying_zstd_frame()
    result = _peak(tmp_path, frame, "ZSTD")
    assert result["reason"] is not None and "volume v seq 7" in str(result["reason"]), result
    assert int(str(result["grew_kib"])) < RSS_BOUND_MIB * 1024, result


def test_honest_frames_decode_to_their_declared_length() -> None:
    data = bytes(range(256)) * (3 * BLOCK // 256)
    record = {
        "volume": "v", "seq": 1, "offset": BLOCK, "length": len(data), "op": "WRITE",
        "checksum": xxhash.xxh3_64_digest(data),
    }  # fmt: skip
    spec = VolumeSpec("v", 64 * BLOCK)
    for compression, frame in (
        ("ZSTD", zstandard.ZstdCompressor(level=3).compress(data)),
        ("LZ4", lz4.frame.compress(data)),
    ):
        assert validate_write(record | {"compression": compression, "data": frame}, spec) == data


def test_truncated_frames_and_oversized_declarations_are_invalid() -> None:
    frame = lz4.frame.compress(bytes(BLOCK))
    with pytest.raises(DecompressError, match="truncated"):
        decompress(frame[:-6], "LZ4", BLOCK, "volume v seq 3")
    with pytest.raises(DecodeBombError, match="over the 67108864"):
        decompress(frame, "LZ4", 128 << 20, "volume v seq 3")
    with pytest.raises(DecompressError, match="does not decompress"):
        decompress(b"\x28\xb5\x2f\xfdgarbage", "ZSTD", BLOCK, "volume v seq 3")
