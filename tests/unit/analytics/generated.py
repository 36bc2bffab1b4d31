"""Generated journal events for the analytics unit tests: text-like, zero, compressible and
encrypted-looking (AES-CTR) block writes of one volume, with message timestamps."""

from __future__ import annotations

import random
from typing import Any

import lz4.frame
import xxhash
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BS = 4096
WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "that",
    "on",
    "as",
    "with",
    "by",
    "at",
    "from",
    "his",
    "her",
    "which",
    "file",
    "report",
    "data",
    "backup",
]


def text(size: int, rng: random.Random) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rng.choice(WORDS) for _ in range(12)) + ".\n").encode()
    return bytes(out[:size])


def encrypted(plain: bytes, key: bytes = b"k" * 32) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    return encryptor.update(plain) + encryptor.finalize()


def write(
    volume: str, seq: int, offset: int, data: bytes, compression: str = "NONE", op: str = "WRITE"
) -> dict[str, Any]:
    payload = lz4.frame.compress(data) if compression == "LZ4" else data
    return {
        "volume": volume, "epoch": 1, "seq": seq, "timestamp": 0, "offset": offset,
        "length": len(data) if op == "WRITE" else BS, "op": op, "compression": compression,
        "data": payload if op == "WRITE" else b"", "checksum": xxhash.xxh3_64_digest(data), "generation": 0,
    }  # fmt: skip
