"""The first blocks a client reads after it connects: a bounded boot profile of the volume.

`connected()` starts a new recording. `record(offset, length)` adds the blocks of each read until
the recording holds `max_blocks` blocks or `window` seconds passed since the connect; then it is
finished and handed to `publish` once (from the calling thread; `publish` must not block). Only a
finished recording is published (and, at `close`, the one in progress), so the stored profile is
always the start of one connection, never a mix of two. A read that would pass `max_blocks` adds
only the blocks that fit. Cost on the read path: one flag check once finished; while recording,
one lock and one bitmap update per read.

Topic `<prefix>.read-profiles` (compacted, keyed by volume): `ReadProfile` events; a restore
copies those blocks first (sinks/restore).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import Producer
from pyroaring import BitMap

from tidemark.core.kafka import KafkaClients
from tidemark.core.topics import Topics
from tidemark.schemas import records
from tidemark.schemas.codec import default_codec

log = logging.getLogger(__name__)

MAX_BLOCKS = 16384  # 64 MiB of 4 KiB blocks; about 2 KiB as a roaring bitmap when clustered
WINDOW_SECONDS = 120.0

Publish = Callable[[BitMap, float], None]  # (blocks, wall-clock time of the connect)


class ReadProfile:
    def __init__(
        self, block_size: int, publish: Publish, max_blocks: int = MAX_BLOCKS, window: float = WINDOW_SECONDS
    ) -> None:
        self.block_size = block_size
        self.max_blocks = max_blocks
        self.window = window
        self._publish = publish
        self._lock = threading.Lock()
        self._recording = False
        self._blocks = BitMap()
        self._started = 0.0
        self._connected_at = 0.0

    def connected(self) -> None:
        """A client connected: the next reads make a new profile (the one in progress is dropped)."""
        with self._lock:
            self._blocks = BitMap()
            self._started = time.monotonic()
            self._connected_at = time.time()
            self._recording = True

    def record(self, offset: int, length: int) -> None:
        if not self._recording or length <= 0:
            return
        with self._lock:
            if not self._recording:
                return
            first, end = offset // self.block_size, (offset + length - 1) // self.block_size + 1
            room = self.max_blocks - len(self._blocks)
            if room > 0:
                self._blocks.add_range(first, min(end, first + room))
            if len(self._blocks) < self.max_blocks and time.monotonic() - self._started < self.window:
                return
            finished = self._finish()
        self._send(*finished)

    def close(self) -> None:
        """Publish the recording in progress, if it holds any block."""
        with self._lock:
            if not self._recording or not self._blocks:
                return
            finished = self._finish()
        self._send(*finished)

    def _finish(self) -> tuple[BitMap, float]:
        self._recording = False
        return self._blocks, self._connected_at

    def _send(self, blocks: BitMap, connected_at: float) -> None:
        try:
            self._publish(blocks, connected_at)
        except Exception as exc:  # noqa: BLE001  (a lost profile only makes a later restore less eager)
            log.warning("the read profile of %d blocks was not published: %s", len(blocks), exc)


class ProfilePublisher:
    """A `Publish` that produces `ReadProfile` events to `<prefix>.read-profiles`, asynchronously
    (one producer, made at the first profile); `close` waits for their delivery."""

    def __init__(self, clients: KafkaClients, topics: Topics, volume: str, block_size: int) -> None:
        self._clients = clients
        self._topic = topics.read_profiles
        self._volume = volume
        self._block_size = block_size
        self._producer: Producer | None = None

    def __call__(self, blocks: BitMap, connected_at: float) -> None:
        record = records.read_profile(
            volume=self._volume, recorded_at=int(connected_at * 1000), block_size=self._block_size,
            block_count=len(blocks), blocks=blocks.serialize(),
        )  # fmt: skip
        if self._producer is None:
            self._producer = self._clients.producer()
        value = default_codec().encode("ReadProfile", record)
        self._producer.produce(self._topic, key=self._volume.encode(), value=value)
        self._producer.poll(0)
        log.info("volume %s: read profile of %d blocks published to %s", self._volume, len(blocks), self._topic)

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None and self._producer.flush(timeout) > 0:
            log.warning("volume %s: the read profile was not delivered to %s", self._volume, self._topic)


@contextmanager
def recorded(
    clients: KafkaClients, topics: Topics, volume: str, block_size: int, max_blocks: int | None = None
) -> Iterator[ReadProfile | None]:
    """A profile published to Kafka while the block runs, then the one in progress (None: `max_blocks` 0)."""
    if max_blocks == 0:
        yield None
        return
    publisher = ProfilePublisher(clients, topics, volume, block_size)
    profile = ReadProfile(block_size, publisher, MAX_BLOCKS if max_blocks is None else max_blocks)
    try:
        yield profile
    finally:
        profile.close()
        publisher.close()
