"""Figure 3's RPO lag split into its stages, to show where the tail comes from.

A reader of the volume's change-set partition (read_committed, like a mirror) records, for every
`ChangeSetSealed`, its seq range, `sealed_at` (the log time of the message that sealed it), its
own timestamp (when the processor produced it) and when the reader received it (the commit made
it visible). Per write, with the tracker's acknowledgement and the mirror's progress:
- ack -> sealed: waiting for the sub-interval to end (at most one sub-interval, plus the tracker's
  acknowledgement arriving after the broker's append);
- sealed -> produced: the processor reading and handling the sealing message;
- produced -> visible: the rest of the processor's transaction and its commit, plus the fetch;
- visible -> applied: the mirror fetching, writing, fsyncing and saving its progress.
All times are wall-clock seconds of this machine (Kafka timestamps are too).
"""

from __future__ import annotations

import bisect
import threading
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import TopicPartition

from tidemark.core import kafka_io
from tidemark.core.partitioning import volume_partition
from tidemark.schemas.codec import default_codec

from .env import Stage

STAGES = ("ack -> sealed", "sealed -> produced", "produced -> visible", "visible -> applied")


@dataclass(frozen=True)
class Seal:
    seq_first: int
    seq_last: int
    sealed: float
    produced: float
    visible: float


class SealWatcher:
    """Reads the volume's change sets as a mirror would and records every seal (a daemon thread).

    It starts at the partition's end: figure 3 starts it for the lag phase only, so that its fetches
    and decoding (in the process that runs the tracker) do not load the sustained phase it does
    not measure. Only `ChangeSetSealed` records are decoded."""

    def __init__(self, stage: Stage, volume: str) -> None:
        self.seals: list[Seal] = []
        self._consumer = stage.clients.consumer(f"bench-seals-{uuid.uuid4().hex[:8]}")
        partition = volume_partition(volume, stage.settings.partitions)
        topic = stage.topics.changesets
        end = kafka_io.watermarks(self._consumer, topic, partition)[1]
        self._consumer.assign([TopicPartition(topic, partition, end)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="seal-watcher", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        codec = default_codec()
        while not self._stop.is_set():
            msg = self._consumer.poll(0.05)
            if msg is None or msg.error() or not (value := msg.value()):
                continue
            visible = time.time()
            if codec.record_type_of(value) != "ChangeSetSealed":
                continue
            _, record = codec.decode(value)
            self.seals.append(Seal(record["seq_first"], record["seq_last"], record["sealed_at"] / 1000,
                                   msg.timestamp()[1] / 1000, visible))  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()

    def stages(self, acked: dict[int, float], applied: dict[int, float]) -> list[list[float]]:
        """Per stage (STAGES), the seconds of every write found in a seal; times are wall clock."""
        seals = sorted(self.seals, key=lambda seal: seal.seq_first)
        firsts = [seal.seq_first for seal in seals]
        split: list[list[float]] = [[] for _ in STAGES]
        for seq, ack in acked.items():
            index = bisect.bisect_right(firsts, seq) - 1
            if index < 0 or seals[index].seq_last < seq or seq not in applied:
                continue
            seal = seals[index]
            marks = (ack, seal.sealed, seal.produced, seal.visible, applied[seq])
            for n in range(len(STAGES)):
                split[n].append(marks[n + 1] - marks[n])
        return split
