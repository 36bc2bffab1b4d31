"""Which partitions of a topic can hold a volume's keyed events.

The project's partitioner is `volume_partition` (xxh3 of the volume name): markers and the tests'
publishers use it. A producer that passes no partition (the processor's change sets and
manifests today) gets librdkafka's default `consistent_random` partitioner: CRC-32 of the key
modulo the partition count. Readers look at both (often the same one) and filter by key, so they
never read the whole topic; once every producer pins `volume_partition`, the second goes.
"""

from __future__ import annotations

import zlib

from tidemark.core.partitioning import volume_partition


def librdkafka_partition(volume: str, count: int) -> int:
    """Where librdkafka's default partitioner puts the key `volume` (CRC-32, like zlib's)."""
    return zlib.crc32(volume.encode()) % count


def key_partitions(volume: str, count: int) -> list[int]:
    """The partitions (one or two, ascending) that can hold events keyed `volume`."""
    return sorted({volume_partition(volume, count), librdkafka_partition(volume, count)})
