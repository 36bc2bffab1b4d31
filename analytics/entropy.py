"""Shannon entropy of written blocks, and which blocks get measured (bounded sampling).

Entropy is measured in bits per byte (0 for a constant block, 8 at most; a 4 KiB block of
ciphertext measures about 7.95, English text about 4.5, ext4 metadata mostly below 3).
"""

from __future__ import annotations

import numpy as np
import xxhash

from .exceptions import PayloadError

BITS_PER_BYTE = 8.0


def shannon_entropy(block: bytes | memoryview) -> float:
    """Bits per byte of the byte histogram of `block`; 0.0 for an empty block."""
    if len(block) == 0:
        return 0.0
    counts = np.bincount(np.frombuffer(block, dtype=np.uint8), minlength=256)
    present = counts[counts > 0] / len(block)
    return float(-(present * np.log2(present)).sum())


def sampled(volume: str, seq: int, stride: int) -> bool:
    """Whether write `seq` of `volume` is measured: one write in `stride`, spread by a hash.

    Deterministic (replaying the journal samples the same writes) and independent of the write
    pattern (an attacker writing every other seq is still sampled).
    """
    return stride <= 1 or xxhash.xxh3_64_intdigest(f"{volume}/{seq}".encode()) % stride == 0


def sample_block(data: bytes, block_size: int, seq: int) -> memoryview:
    """The one block of a write's raw `data` that is measured: chosen by seq, whole blocks only.

    Raises PayloadError when `data` holds no whole block (a tracker writes block-aligned data).
    """
    blocks = len(data) // block_size
    if blocks == 0:
        raise PayloadError(f"write seq {seq} carries {len(data)} bytes, less than one {block_size}-byte block")
    start = (seq % blocks) * block_size
    return memoryview(data)[start : start + block_size]


def stride_for(previous_writes: int, budget: int) -> int:
    """Sample one write in `stride` so a window as busy as the last one stays within `budget`."""
    return max(1, -(-previous_writes // budget))
