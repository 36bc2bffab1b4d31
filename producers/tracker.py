"""The tracker core: every write becomes BlockWrite events, and nothing acknowledged is lost.

A write counts as done when Kafka confirmed every event of it (idempotent producer, acks=all),
or, while Kafka is unreachable, when its blocks are recorded in the durable dirty bitmap: they
are published again from the image once Kafka is back. Seqs are per volume, gap-free and
increasing; each start (and each reconnect) takes a new epoch and continues after the last seq
found at the tail of the volume's writes partition.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, Message, Producer

from tidemark.core.blocks import block_range, is_aligned, runs_limited, split
from tidemark.core.kafka import KafkaClients
from tidemark.core.metrics import StageMetrics
from tidemark.core.partitioning import volume_partition
from tidemark.core.settings import MIB
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec
from tidemark.schemas.codec import default_codec

from .activity_log import ActivityLog
from .dirty_bitmap import DirtyBitmap
from .events import Compression, block_write, marker
from .exceptions import TrackerError
from .image_file import open_volume_image
from .seq_tail import last_seq
from .tracker_state import TrackerState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackerOptions:
    compression: Compression = Compression.NONE
    extent_bytes: int = 256 * 1024
    delivery_timeout_ms: int = 10_000
    region_bytes: int = 1 * MIB
    reconnect_interval: float = 1.0
    queue_max_kbytes: int = 256 * 1024


@dataclass
class TrackerStats:
    epoch: int = 0
    writes: int = 0
    bytes: int = 0
    events: int = 0
    markers: int = 0
    markers_lost: int = 0
    dirty_recorded_blocks: int = 0
    resynced_blocks: int = 0
    reconnects: int = 0
    last_seq: int = -1


class _Pending:
    """Joins the delivery reports of one write's events into the caller's future."""

    def __init__(self, future: Future[None], parts: int) -> None:
        self.future = future
        self.remaining = parts
        self.lock = threading.Lock()

    def fail(self, error: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(error)

    def part_done(self) -> None:
        with self.lock:
            self.remaining -= 1
            done = self.remaining == 0
        if done and not self.future.done():
            self.future.set_result(None)


class Tracker:
    """Thread-safe publisher of one volume's writes (implements `tracker_api.WriteTracker`)."""

    def __init__(
        self,
        volume: VolumeSpec,
        clients: KafkaClients,
        topics: Topics,
        state_folder: Path,
        image: Path | None = None,
        options: TrackerOptions | None = None,
    ) -> None:
        self.volume = volume
        self.clients = clients
        self.topics = topics
        self.image = image
        self.options = options or TrackerOptions()
        if self.options.extent_bytes % volume.block_size:
            raise TrackerError(
                f"extent size {self.options.extent_bytes} must be a multiple of volume "
                f"{volume.name}'s block size {volume.block_size}"
            )
        self.state = TrackerState(state_folder, volume.name)
        self.activity = ActivityLog(state_folder / "activity.log", self.options.region_bytes)
        self.dirty = DirtyBitmap(state_folder / "dirty.bitmap")
        self.stats = TrackerStats()
        self.metrics = StageMetrics("tracker", volume.name)
        self._codec = default_codec()
        self._seq_lock = threading.RLock()
        self._next_seq = 0
        self._epoch = 0
        self._producer: Producer | None = None
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._partition = 0
        self._image_fd: int | None = None

    # -- WriteTracker properties ---------------------------------------------------------------
    @property
    def volume_name(self) -> str:
        return self.volume.name

    @property
    def volume_size(self) -> int:
        return self.volume.size

    @property
    def block_size(self) -> int:
        return self.volume.block_size

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def epoch(self) -> int:
        return self._epoch

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Tracker:
        self.state.lock()
        if self.image is not None:
            try:
                self._image_fd = open_volume_image(self.image, self.volume.name, self.volume.size, writable=False)
            except TrackerError:
                self.state.unlock()
                raise
        recovered = self.activity.recovered_regions()
        if recovered:
            blocks = self._blocks_of_regions(recovered)
            log.warning(
                "volume %s: the previous tracker stopped with %d regions in flight; "
                "republishing %d blocks from the image",
                self.volume.name, len(recovered), len(blocks),
            )
            self.dirty.add(blocks)
            self.activity.forget(recovered)
        try:
            self._connect()
        except TrackerError as exc:
            log.warning("volume %s: Kafka unreachable at start (%s); recording writes as dirty", self.volume.name, exc)
        self._spawn(self._poll_loop, "tracker-poll")
        self._spawn(self._reconnect_loop, "tracker-reconnect")
        self._spawn(self._drain_loop, "tracker-drain")
        return self

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self, timeout: float = 30.0) -> None:
        try:
            self.flush(timeout)
        finally:
            self._stopping.set()
            for thread in self._threads:
                thread.join(timeout=5)
            if self._producer is not None:
                self._producer.flush(5)
            self.activity.close()
            with self._seq_lock:
                self.state.save_seq_hint(self._next_seq - 1)
            if self._image_fd is not None:
                os.close(self._image_fd)
                self._image_fd = None
            self.state.unlock()

    def flush(self, timeout: float = 30.0) -> None:
        producer = self._producer
        if producer is not None and producer.flush(timeout) > 0:
            raise TrackerError(
                f"volume {self.volume.name}: events still unconfirmed after {timeout} s; is the broker up?"
            )

    # -- the write path ------------------------------------------------------------------------
    def intent(self, offset: int, length: int) -> None:
        self.activity.enter(offset, length)

    def submit_write(self, offset: int, data: bytes) -> Future[None]:
        return self._submit(offset, len(data), "WRITE", data)

    def submit_zero(self, offset: int, length: int) -> Future[None]:
        return self._submit(offset, length, "ZERO", b"")

    def submit_trim(self, offset: int, length: int) -> Future[None]:
        return self._submit(offset, length, "TRIM", b"")

    def submit_marker(self, kind: str, label: str | None = None) -> Future[None]:
        future: Future[None] = Future()
        if not self._connected.is_set():
            self.stats.markers_lost += 1
            log.warning("volume %s: Kafka unreachable, %s marker %r not recorded", self.volume.name, kind, label)
            future.set_result(None)
            return future
        pending = _Pending(future, 1)
        with self._seq_lock:
            record = marker(self.volume.name, kind, self._epoch, self._next_seq - 1, label)
            self._produce("Marker", record, lambda err: self._marker_done(err, pending))
        self.stats.markers += 1
        return future

    def _marker_done(self, err: object, pending: _Pending) -> None:
        if err is not None:
            self.stats.markers_lost += 1
            self._lose_connection(err)
        pending.part_done()

    def _submit(self, offset: int, length: int, op: str, data: bytes) -> Future[None]:
        self._check_range(offset, length)
        future: Future[None] = Future()
        self.activity.submitted(offset, length)
        future.add_done_callback(lambda _f: self.activity.settled(offset, length))
        self.stats.writes += 1
        self.stats.bytes += length
        if not self._connected.is_set() and not self._wait_or_record_dirty(offset, length):
            future.set_result(None)
            return future
        pieces = list(split(offset, length, self.options.extent_bytes))
        pending = _Pending(future, len(pieces))
        with self._seq_lock:
            for piece in pieces:
                start = piece.offset - offset
                chunk = data[start : start + piece.length] if op == "WRITE" else b""
                self._produce_write(piece.offset, piece.length, op, chunk, pending)
        return future

    def _wait_or_record_dirty(self, offset: int, length: int) -> bool:
        """While disconnected: True to publish anyway (no image: wait for Kafka), False if recorded."""
        if self.image is None:
            while not self._connected.wait(1.0):
                if self._stopping.is_set():
                    raise TrackerError(f"volume {self.volume.name}: tracker stopped while Kafka was unreachable")
            return True
        blocks = block_range(offset, length, self.block_size)
        self.dirty.add(blocks)
        self.stats.dirty_recorded_blocks += len(blocks)
        return False

    def _produce_write(self, offset: int, length: int, op: str, chunk: bytes, pending: _Pending) -> None:
        seq = self._next_seq
        record = block_write(self.volume.name, self._epoch, seq, offset, length, op, chunk, self.options.compression)
        self._next_seq += 1
        self.stats.last_seq = seq
        self.stats.events += 1

        def on_delivery(err: object) -> None:
            if err is None:
                self.metrics.handled(1, length)
            else:
                self._record_undelivered(offset, length, err)
                if self.image is None:
                    pending.fail(
                        TrackerError(
                            f"volume {self.volume.name}: write at offset {offset} not confirmed by "
                            f"Kafka ({err}) and there is no image to resync it from"
                        )
                    )
            pending.part_done()

        self._produce("BlockWrite", record, on_delivery)

    def _record_undelivered(self, offset: int, length: int, err: object) -> None:
        blocks = block_range(offset, length, self.block_size)
        self.dirty.add(blocks)
        self.stats.dirty_recorded_blocks += len(blocks)
        self._lose_connection(err)

    def _produce(self, record_type: str, record: dict[str, Any], done: Any) -> None:
        """Produce under the seq lock (callers hold it) so partition order is seq order."""
        producer = self._producer
        assert producer is not None
        value = self._codec.encode(record_type, record)

        def on_delivery(err: RdKafkaError | None, _msg: Message) -> None:
            done(err)

        while True:
            try:
                producer.produce(
                    self.topics.writes,
                    key=self.volume.name.encode(),
                    value=value,
                    partition=self._partition,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                producer.poll(0.05)

    def _check_range(self, offset: int, length: int) -> None:
        if not is_aligned(offset, length, self.block_size) or length <= 0:
            raise TrackerError(
                f"volume {self.volume.name}: extent offset {offset} length {length} is not aligned "
                f"to the block size {self.block_size}; widen it with tidemark.core.blocks.align_out"
            )
        if offset + length > self.volume.size:
            raise TrackerError(
                f"volume {self.volume.name}: extent offset {offset} length {length} ends past the "
                f"volume size {self.volume.size}"
            )

    # -- connection management -----------------------------------------------------------------
    def _connect(self) -> None:
        """New producer, new epoch, seq continued from the partition's tail."""
        self._retire_producer()
        try:
            admin = self.clients.admin()
            metadata = admin.list_topics(self.topics.writes, timeout=5)
            topic = metadata.topics.get(self.topics.writes)
            if topic is None or topic.error is not None:
                raise TrackerError(f"writes topic {self.topics.writes} missing: run `tidemark topics create`")
            self._partition = volume_partition(self.volume.name, len(topic.partitions))
            consumer = self.clients.consumer(f"tidemark-tracker-tail-{self.volume.name}")
            try:
                tail = last_seq(consumer, self.topics.writes, self._partition, self.volume.name, timeout=15)
            finally:
                consumer.close()
        except KafkaException as exc:
            raise TrackerError(f"volume {self.volume.name}: cannot reach Kafka: {exc}") from exc
        except Exception as exc:  # librdkafka surfaces timeouts as several types
            if isinstance(exc, TrackerError):
                raise
            raise TrackerError(f"volume {self.volume.name}: cannot reach Kafka: {exc}") from exc
        with self._seq_lock:
            self._epoch = self.state.next_epoch()
            self.stats.epoch = self._epoch
            self._next_seq = max(tail, self.state.seq_hint) + 1
            self._producer = self.clients.producer(
                **{
                    "message.timeout.ms": self.options.delivery_timeout_ms,
                    "queue.buffering.max.kbytes": self.options.queue_max_kbytes,
                }
            )
            self._connected.set()
            record = marker(self.volume.name, "EPOCH_START", self._epoch, self._next_seq - 1, None)
            self._produce("Marker", record, lambda err: self._lose_connection(err) if err else None)
        log.info("volume %s: epoch %d, next seq %d", self.volume.name, self._epoch, self._next_seq)

    def _retire_producer(self) -> None:
        """Settle every event of the previous producer before the partition's tail is read.

        An event still queued could otherwise be delivered (the broker back) after the tail was
        read and share its seq with the new epoch's first events, which consumers drop as
        repeats. Queued events are purged (their blocks become dirty); in-flight ones get until
        the delivery timeout to be confirmed or to fail.
        """
        old = self._producer
        if old is None:
            return
        old.purge(in_queue=True, in_flight=False)
        if old.flush(self.options.delivery_timeout_ms / 1000) > 0:
            old.purge()
            old.flush(1)

    def _lose_connection(self, err: object) -> None:
        if self._connected.is_set():
            log.warning("volume %s: Kafka delivery failed (%s); recording writes as dirty", self.volume.name, err)
            self._connected.clear()

    def _reconnect_loop(self) -> None:
        while not self._stopping.wait(self.options.reconnect_interval):
            if self._connected.is_set():
                continue
            try:
                self._connect()
                self.stats.reconnects += 1
            except TrackerError as exc:
                log.debug("still disconnected: %s", exc)

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            producer = self._producer
            if producer is None:
                time.sleep(0.1)
                continue
            producer.poll(0.1)

    # -- resync of dirty blocks ----------------------------------------------------------------
    def _drain_loop(self) -> None:
        while not self._stopping.wait(0.2):
            if not self._connected.is_set() or not len(self.dirty) or self._image_fd is None:
                continue
            self._drain_once()

    def _drain_once(self) -> None:
        max_blocks = self.options.extent_bytes // self.block_size
        for first, count in runs_limited(self.dirty.snapshot(), max_blocks):
            if not self._connected.is_set() or self._stopping.is_set():
                return
            offset, length = first * self.block_size, count * self.block_size
            future: Future[None] = Future()
            pending = _Pending(future, 1)
            with self._seq_lock:
                if not self._connected.is_set():
                    return
                data = os.pread(self._image_fd, length, offset)  # type: ignore[arg-type]
                self._produce_write(offset, length, "WRITE", data, pending)

            def settle(_f: Future[None], blocks: range = range(first, first + count)) -> None:
                if self._connected.is_set():
                    self.dirty.discard(blocks)
                    self.stats.resynced_blocks += len(blocks)

            future.add_done_callback(settle)

    def _blocks_of_regions(self, regions: Any) -> list[int]:
        per_region = self.options.region_bytes // self.block_size
        blocks: list[int] = []
        for region in regions:
            first = region * per_region
            last = min(first + per_region, self.volume.blocks)
            blocks.extend(range(first, last))
        return blocks

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=f"{name}-{self.volume.name}", daemon=True)
        thread.start()
        self._threads.append(thread)


def open_tracker(
    app: Any,
    volume_name: str,
    image_path: Path | None,
    compression: Compression | str = Compression.NONE,
    delivery_timeout_ms: int | None = None,
) -> Tracker:
    """A started tracker for a registered volume (`app` is the CLI's AppContext).

    Refuses an unknown volume, and an image whose size differs from the registered size.
    `delivery_timeout_ms` (default `TrackerOptions.delivery_timeout_ms`) bounds how long a write
    waits for Kafka before its blocks are recorded as dirty instead.
    """
    from tidemark.core.names import validate_name
    from tidemark.core.volumes import lookup_volume

    validate_name(volume_name)
    spec = lookup_volume(app.clients, app.topics, volume_name)
    options = TrackerOptions(
        compression=Compression(compression) if isinstance(compression, str) else compression,
        extent_bytes=app.settings.extent_bytes,
        delivery_timeout_ms=delivery_timeout_ms or TrackerOptions.delivery_timeout_ms,
    )
    folder = app.settings.volume_state_dir("trackers", volume_name)
    return Tracker(spec, app.clients, app.topics, folder, image_path, options).start()
