"""A deterministic writes journal for processor tests: writes, markers and ticks with set timestamps."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field

import xxhash
from confluent_kafka import Producer

from tidemark.core import kafka_io
from tidemark.core.partitioning import volume_partition
from tidemark.processors.ticker import TICK_KEY
from tidemark.schemas.codec import default_codec

BLOCK = 4096


@dataclass
class Journal:
    volume: str
    size: int
    messages: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    """(key, value, timestamp ms) in partition order."""
    image: bytearray = field(init=False)
    markers: int = 0
    garbage: int = 0

    def __post_init__(self) -> None:
        self.image = bytearray(self.size)


def build_journal(volume: str, size: int, writes: int, seed: int = 7, marker_every: int = 500) -> Journal:
    """Writes 10 ms apart, a tick every 250 ms, a requested marker every `marker_every` writes, one
    garbage message, and a final marker."""
    rng = random.Random(seed)
    codec = default_codec()
    journal = Journal(volume, size)
    start_ms = int(time.time() * 1000) - writes * 10 - 60_000
    blocks = size // BLOCK
    for seq in range(writes):
        ts = start_ms + seq * 10
        count = rng.choice((1, 1, 2, 4, 16))
        block = rng.randrange(0, blocks - count)
        data = rng.randbytes(count * BLOCK)
        record = {
            "volume": volume, "epoch": 1, "seq": seq, "timestamp": ts * 1000, "offset": block * BLOCK,
            "length": len(data), "op": "WRITE", "compression": "NONE", "data": data,
            "checksum": xxhash.xxh3_64_digest(data),
        }  # fmt: skip
        journal.messages.append((volume.encode(), codec.encode("BlockWrite", record), ts))
        journal.image[block * BLOCK : block * BLOCK + len(data)] = data
        if seq % 25 == 24:
            journal.messages.append((TICK_KEY, b"", ts + 1))
        if seq % marker_every == marker_every - 1:
            journal.messages.append((volume.encode(), _marker(volume, ts + 2, f"m{seq}"), ts + 2))
            journal.markers += 1
        if seq == writes // 3:
            journal.messages.append((volume.encode(), b"\xc3\x01garbage", ts + 3))
            journal.garbage += 1
    end = start_ms + writes * 10 + 5
    journal.messages.append((volume.encode(), _marker(volume, end, "final"), end))
    journal.markers += 1
    return journal


def _marker(volume: str, ts_ms: int, label: str) -> bytes:
    record = {
        "volume": volume, "marker_id": str(uuid.UUID(int=ts_ms)), "kind": "REQUESTED", "timestamp": ts_ms * 1000,
        "epoch": 1, "after_seq": None, "label": label, "group": None, "barrier_id": None,
    }  # fmt: skip
    return default_codec().encode("Marker", record)


def publish(producer: Producer, topic: str, partitions: int, journal: Journal) -> None:
    partition = volume_partition(journal.volume, partitions)
    for key, value, ts in journal.messages:
        kafka_io.produce(producer, topic, value, key=key, partition=partition, timestamp=ts)
    assert producer.flush(60) == 0
