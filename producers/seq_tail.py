"""Find the last seq a volume has on the writes topic.

A (re)connecting tracker continues from there, so it never reuses a seq and leaves no gap for
writes the previous tracker (or producer) had published but not yet recorded as confirmed.

- `last_seq_from(checkpoint)`: forward from a checkpoint (`seq_checkpoint`: an offset holding a
  confirmed message of the volume, every seq before it at most the checkpoint's) to the end. It
  reads only what follows the checkpoint, however much the partition's other volumes wrote
  before it; for a settled checkpoint, only the message at its offset.
- `last_seq`: backwards from the end in growing windows, when there is no usable checkpoint.

Both read in batches and decode only the volume's own messages (the key is compared first). Both
fail only when nothing arrives for `stall` seconds, however long the read takes: the backwards
windows grow fourfold, and with a limit on each window's time (30 s) the last window of a
partition holding much of the neighbours' data failed every time: a tracker for a new volume
there could never connect, and recorded every write as dirty while it retried. (A new volume's
tracker on a dev broker holding 17 GB read one partition backwards for 11.6 s before serving.)
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Message

from tidemark.core import kafka_io
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .seq_checkpoint import Checkpoint

# A tail read fetches big batches: the partition may hold much of other volumes' data to skip.
SCAN_CONSUMER_CONFIG = {"fetch.max.bytes": 128 << 20, "max.partition.fetch.bytes": 64 << 20}
# Reading a checkpoint and the one message a settled checkpoint names fetches little: with the
# scan's fetch sizes, that one message brought 64 MiB of the neighbours' data after it (a restart
# next to two million neighbour events took 2.5-7 s on a loaded machine instead of well under 1 s).
# A message larger than the fetch size still arrives whole (the broker returns the first batch).
POINT_CONSUMER_CONFIG = {"max.partition.fetch.bytes": 64 << 10, "queued.min.messages": 1}
STALL_SECONDS = 30.0  # a tail read fails when nothing arrives for this long (the broker gone)


def last_seq(consumer: Consumer, topic: str, partition: int, volume: str, stall: float = STALL_SECONDS) -> int:
    """The highest BlockWrite seq of `volume` in the partition, or -1 if it has none."""
    scan = _Scan(volume)
    bounds = kafka_io.watermarks(consumer, topic, partition, stall)

    def found() -> bool:  # the newest window holding one of the volume's BlockWrites has the answer
        return scan.best is not None

    for msg in kafka_io.read_backwards(consumer, topic, partition, found, bounds=bounds, stall=stall):
        scan.add(msg)
    return -1 if scan.best is None else scan.best


def last_seq_from(
    consumer: Consumer, topic: str, partition: int, volume: str, checkpoint: Checkpoint, stall: float = STALL_SECONDS
) -> int | None:
    """The highest seq of `volume` given its checkpoint: a settled checkpoint's seq, else the
    checkpoint's seq or a higher BlockWrite after it. None when the checkpoint's offset holds no
    message of the volume (a stale checkpoint, the topic recreated: scan backwards instead)."""
    low, high = kafka_io.watermarks(consumer, topic, partition, stall)
    if not low <= checkpoint.offset < high:
        return None
    end = checkpoint.offset + 1 if checkpoint.settled else high
    scan = _Scan(volume)
    ends = {partition: end}
    for msg in kafka_io.read_to_end(consumer, topic, {partition: checkpoint.offset}, ends, stall=stall):
        scan.add(msg)
    if scan.first != checkpoint.offset:
        return None
    return checkpoint.seq if scan.best is None else max(scan.best, checkpoint.seq)


class _Scan:
    """The highest seq of the volume's BlockWrites among the messages added, and the offset of the
    volume's first message (None while there is none). The key is compared before decoding."""

    def __init__(self, volume: str) -> None:
        self.volume = volume
        self.key = volume.encode()
        self.codec: Any = default_codec()
        self.best: int | None = None
        self.first: int | None = None

    def add(self, msg: Message) -> None:
        value = msg.value()
        if msg.key() != self.key or value is None:
            return
        self.first = msg.offset() if self.first is None else self.first
        try:
            record_type, record = self.codec.decode(value)
        except DecodeError:
            return
        if record_type == "BlockWrite" and record["volume"] == self.volume:
            self.best = record["seq"] if self.best is None else max(self.best, record["seq"])
