"""Reading the processor's own input back: the writes a seal needs, and the re-fold after a restart.

One consumer per worker, never subscribed (assign and seek only, no group membership, nothing
committed). A seal asks for a few offsets of one partition in ascending order: the read starts
at the first one and goes forward, skipping messages it does not need, and jumps ahead when the
next needed offset is more than `SEEK_GAP` messages away; so it is bounded by the open
sub-interval's offset range and mostly sequential. Every offset asked for must exist: a missing
one means the journal lost it (retention shorter than a sub-interval) and the worker stops.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence

from confluent_kafka import KafkaError, TopicPartition

from tidemark.core.kafka import KafkaClients

from .exceptions import ProcessorError
from .kafka_config import readback_consumer

SEEK_GAP = 2048
"""Skip ahead with a new fetch position instead of reading through this many unneeded messages."""

READ_TIMEOUT_S = 60.0

Message = tuple[int, bytes | None, bytes | None]
"""(offset, key, value) of one writes message."""


class JournalReader:
    def __init__(self, clients: KafkaClients, topic: str) -> None:
        self.topic = topic
        self._consumer = clients.consumer(f"tidemark-readback-{uuid.uuid4().hex[:8]}", **readback_consumer())

    def read(self, partition: int, offsets: Sequence[int]) -> Iterator[Message]:
        """The messages at `offsets` (ascending, distinct), in that order."""
        if not offsets:
            return
        wanted = iter(offsets)
        want = next(wanted)
        for message in self._from(partition, want, None):
            offset = message[0]
            if offset < want:
                continue
            if offset > want:
                raise ProcessorError(
                    f"{self.topic}[{partition}] no longer holds offset {want} (the first one left is {offset}): "
                    "the journal's retention is shorter than the open sub-interval; raise TIDEMARK_WRITES_RETENTION_MS"
                )
            yield message
            following = next(wanted, None)
            if following is None:
                return
            want = following
            if want - offset > SEEK_GAP:
                self._seek(partition, want)

    def scan(self, partition: int, start: int, end: int) -> Iterator[Message]:
        """Every message with `start <= offset < end`."""
        if start < end:
            yield from self._from(partition, start, end)

    def close(self) -> None:
        self._consumer.close()

    def _seek(self, partition: int, offset: int) -> None:
        self._consumer.assign([TopicPartition(self.topic, partition, offset)])

    def _from(self, partition: int, start: int, end: int | None) -> Iterator[Message]:
        """Messages from `start` on (up to `end`, exclusive), until the caller stops."""
        self._seek(partition, start)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while True:
            msg = self._consumer.poll(0.5)
            if msg is None:
                if time.monotonic() > deadline:
                    raise ProcessorError(
                        f"reading {self.topic}[{partition}] back from {start} took over {READ_TIMEOUT_S} s"
                    )
                continue
            error = msg.error()
            offset = msg.offset() or 0
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if end is None or offset >= end:
                        raise ProcessorError(
                            f"{self.topic}[{partition}] ends at {offset}, before the offsets asked for"
                        )
                    continue
                raise ProcessorError(f"reading {self.topic}[{partition}] back: {error}")
            if end is not None and offset >= end:
                return
            deadline = time.monotonic() + READ_TIMEOUT_S
            yield offset, msg.key(), msg.value()
            if end is not None and offset + 1 >= end:
                return
