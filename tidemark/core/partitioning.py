"""Which partition of a per-volume topic holds a volume: the same answer in every stage.

Trackers name the partition explicitly (so a restarted tracker can find its last seq at the
partition's tail), and every other stage relies only on "one volume, one partition".
"""

from __future__ import annotations

import xxhash


def volume_partition(volume: str, partitions: int) -> int:
    return xxhash.xxh3_64_intdigest(volume.encode()) % partitions
