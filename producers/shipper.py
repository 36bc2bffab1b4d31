"""The shipper: turns queued writes and markers into Kafka events, in order.

Whoever holds its lock (`Shipper._lock`) alone takes from the queue, assigns seqs (per volume,
gap-free within an epoch, increasing) and produces, so the partition's order is the seq order and
the queue's order. That is the ship thread, or the NBD server's event loop, which ships the runs
of writes of its C path itself once their replies are out (`ship_queued`): at queue depth 1 a ship
thread woken per write made every request wait for the interpreter lock behind it.

With local acknowledgement nobody waits for the ship thread, so it works in batches
(`ShipperConfig.batch_pause`): woken once per pause rather than once per write, it takes the
interpreter lock and a context switch from the event loop once per batch. Per item it splits the
write into events of at most `extent_bytes`, computes xxh3 once, compresses, encodes (the
BlockWrite writer in C) and gathers the events of the writes queued together into one call to
librdkafka (`_flush_batch`). Delivery reports come back on the poll thread, or on the event loop
after it shipped (`_take_reports`), and settle the item (ship window, activity log, the caller's
future in `--ack kafka`).

While the link is down the queue is diverted: writes go to the dirty bitmap, markers are parked.
While the window is AHEAD and the queue is empty it drains the dirty bitmap from the image in
coalesced extents, yielding to a client that keeps writing (`drain_pace`), and switches back to
SYNC (releasing the parked markers first) once drained.
It also owns the connection: a new producer and a new epoch on every (re)connect, with the seq
continued from the tail of the volume's writes partition, found from the volume's checkpoint
(`seq_checkpoint`, published by the poll thread after deliveries) without reading the
neighbours' data before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import xxhash
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, Message, Producer

from tidemark.core.exceptions import KafkaError, TopicMissingError
from tidemark.core.image_io import pread_full
from tidemark.core.kafka import KafkaClients
from tidemark.core.kafka_io import reader, topic_partitions
from tidemark.core.metrics import StageMetrics
from tidemark.core.partitioning import volume_partition
from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec
from tidemark.schemas import records
from tidemark.schemas.codec import default_codec

from .activity_log import ActivityLog
from .blockwrite_encoder import BlockWriteEncoder
from .dirty_bitmap import DirtyBitmap
from .drain_pace import DEFAULT_MIN_BYTES_PER_S, DrainPace
from .events import Compression, compress, now_micros
from .exceptions import TrackerError
from .parked_markers import ParkedMarkers
from .seq_checkpoint import (
    Checkpoint,
    CheckpointWriter,
    encode_checkpoint,
    ensure_checkpoint_topic,
    read_checkpoint,
)
from .seq_tail import POINT_CONSUMER_CONFIG, SCAN_CONSUMER_CONFIG, last_seq, last_seq_from
from .ship_queue import ShipQueue
from .ship_window import Mode, ShipWindow
from .tracker_state import TrackerState

log = logging.getLogger(__name__)
IDLE_WAIT_SECONDS = 0.2
BUSY_WAIT_SECONDS = 0.002
DRAIN_BATCH = 64
# Write events handed to librdkafka in one call at most. Each call lets go of the interpreter lock,
# and taking it back costs the ship thread a wait behind the client's requests: one call per event
# (`Producer.produce`) made every event a hand-over of the lock between the threads.
PRODUCE_BATCH = 64
_LOST = "the link to Kafka is lost"
_LOST_AT_STOP = "the tracker stopped before librdkafka had room for it"
# `ship_queued` ships on the event loop only while at most this many writes are queued: a client
# that waits for (nearly) every reply. One that keeps many requests in flight has the ship thread
# ship for it, which yields to its requests (`_yield_if_behind`), so the window can fill and pull
# ahead instead of the event loop shipping every write before it reads the next requests: 4 KiB
# QD32 after QD1 on one tracker made 24,000-29,000 IOPS so, against 54,000 with the ship thread.
SHIP_QUEUED_MAX_WRITES = 4
# ... each of at most the C path's largest write: a larger one queued meanwhile by the thread pool
# (up to 32 MiB) is hashed and encoded by the ship thread, not on the event loop.
SHIP_QUEUED_MAX_BYTES = 64 * 1024


@dataclass(eq=False, slots=True)
class WriteItem:
    """One submitted write (any length), queued for the shipper."""

    ticket: int
    op: str
    offset: int
    length: int
    data: bytes
    micros: int
    future: Future[None] | None
    remaining: int = 0
    failed: bool = False


@dataclass(eq=False)
class MarkItem:
    ticket: int
    kind: str
    label: str | None
    future: Future[None] | None


@dataclass
class ShipperStats:
    epoch: int = 0
    events: int = 0
    events_shipped_queued: int = 0  # of `events`, those produced by `ship_queued` (the event loop)
    markers: int = 0
    markers_parked: int = 0
    dirty_recorded_blocks: int = 0
    resynced_blocks: int = 0
    reconnects: int = 0
    last_seq: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class ShipperConfig:
    compression: Compression
    extent_bytes: int
    delivery_timeout_ms: int
    reconnect_interval: float
    queue_max_kbytes: int
    linger_ms: int
    generation: int = 0
    # Seconds the ship loop sleeps once the queue is empty, so the writes submitted meanwhile are
    # taken in one wakeup (0: take each as it comes, for `--ack kafka`, where a client waits).
    batch_pause: float = 0.0
    # Seconds between the poll thread's looks for delivery reports while writes are unshipped
    # (0: it waits in librdkafka and is woken per report, for `--ack kafka`, where a client waits).
    # With local acknowledgement the event loop takes most reports itself (`ship_queued`).
    report_pause: float = 0.0
    # The drain's rate while the client writes faster than it (`drain_pace.DrainPace`).
    drain_min_bytes_per_s: int = DEFAULT_MIN_BYTES_PER_S
    # Seconds of work without the queue running empty after which the ship loop lets go of the
    # interpreter lock after every item (0: never). Only where the window can pull ahead: a
    # client that writes faster than the shipping then gets the lock first, and its writes past
    # the bound are marked dirty, instead of the client slowing to the shipping's pace.
    yield_after: float = 0.0


class Shipper:
    def __init__(
        self,
        volume: VolumeSpec,
        clients: KafkaClients,
        topics: Topics,
        state: TrackerState,
        config: ShipperConfig,
        window: ShipWindow[MarkItem],
        dirty: DirtyBitmap,
        activity: ActivityLog,
        image_fd: int | None,
        parked: ParkedMarkers,
    ) -> None:
        self.volume = volume
        self.clients = clients
        self.topics = topics
        self.state = state
        self.config = config
        self.window = window
        self.dirty = dirty
        self.activity = activity
        self.image_fd = image_fd
        self.parked = parked
        self.pace = DrainPace(config.drain_min_bytes_per_s)
        self.queue: ShipQueue[WriteItem | MarkItem] = ShipQueue()
        self.stats = ShipperStats()
        self.metrics = StageMetrics("tracker", volume.name)
        self._codec = default_codec()
        self._encoder = BlockWriteEncoder(self._codec, volume.name)
        self._key = volume.name.encode()
        self._producer: Producer | None = None
        self._partition = 0
        self._epoch = 0
        self._next_seq = 0
        # Held by whoever takes from the queue and produces (the ship thread, or `ship_queued`):
        # it guards the seqs, the epoch, the producer and the gathered batch.
        self._lock = threading.Lock()
        self._settle_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._reports: deque[tuple[RdKafkaError | None, WriteItem, int, int, bool, int, int]] = deque()
        self._batch: list[dict[str, Any]] = []  # write events not yet handed to librdkafka, in seq order
        self._checkpoints = CheckpointWriter()
        self._checkpoint_topic: str | None = None
        self._settled_out = False  # a settled checkpoint was produced; unsettle before the next seq
        self._last_seq_use = time.monotonic()
        self._busy = False  # True while an item taken from the queue is being handled
        self._stopping = threading.Event()
        self._markers_out: set[int] = set()  # tickets of markers produced and not yet reported
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def start(self) -> None:
        for kind, label in self.parked.load():
            self._park(MarkItem(self.window.ticket(), kind, label, None))
        try:
            self.connect()
        except TrackerError as exc:
            log.warning("volume %s: Kafka unreachable at start (%s); recording writes as dirty", self.volume.name, exc)
        for target, name in ((self._ship_loop, "tracker-ship"), (self._poll_loop, "tracker-poll")):
            thread = threading.Thread(target=target, name=f"{name}-{self.volume.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def idle(self) -> bool:
        """Nothing queued, nothing being handled, nothing unconfirmed."""
        return self.queue.empty() and not self._busy and self.window.unshipped_bytes == 0

    def ship_queued(self) -> None:
        """Ship the queued writes on the caller's thread, now: the NBD server's event loop calls it
        once its replies to a run of writes are out (`Tracker.submit_writes` queues them without
        waking the ship thread).

        At queue depth 1 the client is busy with the reply while its write ships, and no other
        thread takes the interpreter lock or a context switch for it. When the ship thread wakes
        per write instead, each request waits for the lock behind it (BENCHMARKS.md, figure 8).
        Only the plain case ships here: the link up and in SYNC, no seq to unsettle first, at
        most `SHIP_QUEUED_MAX_WRITES` writes queued (a client that waits for its replies), a
        write first in line, nothing refused waiting; it never waits (a full librdkafka queue
        leaves the rest gathered). Anything else, or the
        ship thread at work, wakes the ship thread, which takes what is left."""
        if self._lock.acquire(blocking=False):
            try:
                shipped = self._ship_plain_writes()
            finally:
                self._lock.release()
            if shipped:
                self._take_reports()
                return
        self.queue.wake()

    def _take_reports(self) -> None:
        """The delivery reports librdkafka has ready, handled on the caller's thread (`ship_queued`).

        confluent-kafka takes the interpreter lock once per report: taken here, by the thread that
        holds it already, they cost no hand-over. The poll thread, which looks only every
        `report_pause` while writes are unshipped, then rarely finds any. Not while a marker is
        unconfirmed: its report writes the parked markers' file durably (an fsync), which must
        not stall the client's requests."""
        producer = self._producer
        if producer is not None and not self._markers_out:
            producer.poll(0)
            self.settle_reports()

    def _ship_plain_writes(self) -> bool:
        """`ship_queued` under the lock: True when the queue is empty and every event handed over."""
        if (
            self._stopping.is_set()
            or self._producer is None
            or not self.window.connected
            or self.window.mode is not Mode.SYNC
            or self._settled_out
            or self._batch
            or len(self.queue) > SHIP_QUEUED_MAX_WRITES
        ):
            return False
        self._busy = True
        events = self.stats.events
        try:
            for _ in range(len(self.queue)):  # what is queued now: later puts wait for the next call
                item = self.queue.first()
                if not isinstance(item, WriteItem) or item.length > SHIP_QUEUED_MAX_BYTES:
                    return False
                self.queue.take()
                self._ship(item)  # the gates above hold: it produces, with no wait
            return self._flush_batch(wait=False) and self.queue.empty()
        finally:
            self.stats.events_shipped_queued += self.stats.events - events
            self._busy = False

    def stop(self) -> None:
        """End the threads; what is still queued goes to the dirty bitmap (markers stay parked)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)
        with self._lock:
            self._flush_batch()
            self._divert_queue()
            if self._producer is not None:
                self._producer.flush(5)
                self.settle_reports()
                if self._publish_settled():
                    self._producer.flush(5)
            self.settle_reports()

    # -- the loop ------------------------------------------------------------------------------
    def _ship_loop(self) -> None:
        last_attempt = time.monotonic()
        busy_since: float | None = None  # the queue has not run empty since
        while not self._stopping.is_set():
            if not self.window.connected:
                with self._lock:
                    self._divert_queue()
                    retry = time.monotonic() - last_attempt >= self.config.reconnect_interval
                    if retry:
                        last_attempt = time.monotonic()
                        self._reconnect()
                if not retry:
                    time.sleep(min(IDLE_WAIT_SECONDS, self.config.reconnect_interval))
                continue
            ahead = self.window.mode is Mode.AHEAD
            if not ahead and self.queue.empty() and not self._batch:
                self.queue.wait(IDLE_WAIT_SECONDS)
            pause: float | None = None  # seconds to wait (0: only let go of the interpreter lock)
            with self._lock:
                item = self.queue.take()
                if item is None:
                    busy_since = None
                    self._flush_batch()  # what librdkafka refused to `ship_queued` for a full queue
                    if ahead and not self._background():
                        # the window is full (wait for deliveries) or the drain yields to a busy client
                        pause = max(BUSY_WAIT_SECONDS, self.pace.delay())
                    elif not ahead and time.monotonic() - self._last_seq_use >= self._checkpoints.interval:
                        self._publish_settled()
                else:
                    self._busy = True
                    try:
                        self._ship(item)
                    finally:
                        self._busy = False
                    if len(self._batch) >= PRODUCE_BATCH or self.queue.empty():
                        self._flush_batch()
                    if self.queue.empty():
                        busy_since = None
                        if self.config.batch_pause and not ahead:
                            pause = self.config.batch_pause  # let the next writes gather: one wakeup for many
                    elif self.config.yield_after:
                        busy_since, pause = self._yield_if_behind(busy_since)
            if pause:  # outside the lock: `ship_queued` may ship meanwhile
                self._stopping.wait(pause)
            elif pause is not None:
                time.sleep(0)

    def _yield_if_behind(self, busy_since: float | None) -> tuple[float, float | None]:
        """A backlog: once it has lasted `yield_after`, hand the interpreter lock to whoever waits
        for it (the client's requests) after every item, with its events handed to librdkafka
        first. When nobody waits, the lock comes straight back. Sleeping 0 s releases the lock;
        the ship thread then queues for it behind the others. Returns the backlog's start and
        the pause after the item (0: sleep 0 s, outside the shipper's lock; None: none).

        Without this, the ship thread keeps the lock for the interpreter's whole switch interval
        (5 ms) at a time, and a client writing as fast as it can settles at the shipping's pace:
        4 KiB random writes at queue depth 32 ran at 18,000-20,000 IOPS without it and
        27,000-33,000 with it, in interleaved fio rounds on the 2-core test machine, a fresh
        tracker per job (BENCHMARKS.md, figure 8). A threshold of one batch pause leaves a ship
        thread that keeps up alone: with 1 ms, queue depth 1 lost about 15 %. Yielding after a
        slice of 100-300 us of work instead of every item, or only past a queue of 64-512 items,
        cost queue depth 32 a quarter to a half and gained queue depth 1 under 10 %."""
        now = time.monotonic()
        if busy_since is None:
            return now, None
        if now - busy_since >= self.config.yield_after:
            self._flush_batch()
            return busy_since, 0.0
        return busy_since, None

    def _background(self) -> bool:
        """Queue empty while AHEAD: release the parked markers if drained, else drain up to
        `DRAIN_BATCH` runs while the window has room. False when there was nothing to do."""
        released = self.window.resume(lambda: len(self.dirty) == 0)
        if released is not None:
            for mark in released:
                self._produce_marker(mark)
            log.info(
                "volume %s: drained; publishing every write again (%d markers released)",
                self.volume.name, len(released),
            )  # fmt: skip
            return True
        drained = 0
        if self.image_fd is None or len(self.dirty) == 0 or not self._may_assign_seqs():
            return False
        while (
            self.image_fd is not None
            and drained < DRAIN_BATCH
            and self.window.may_drain()
            and self.pace.allows()
            and self._drain_one()
        ):
            drained += 1
        return drained > 0

    def _ship(self, item: WriteItem | MarkItem) -> None:
        if not self.window.connected or (isinstance(item, WriteItem) and not self._may_assign_seqs()):
            self._divert(item)
        elif isinstance(item, MarkItem):
            if self.window.mode is Mode.AHEAD:
                self._park(item)
            else:
                self._produce_marker(item)
        else:
            self._produce_write(item)

    # -- producing -----------------------------------------------------------------------------
    def _produce_write(self, item: WriteItem) -> None:
        step = self.config.extent_bytes
        pieces = range(item.offset, item.offset + item.length, step)
        item.remaining = len(pieces)
        self.window.sending(item.ticket)
        if len(pieces) == 1:  # one event: its payload is the whole write, with no view to slice
            self._produce_piece(item, item.offset, item.length, True, item.data if item.op == "WRITE" else b"")
        else:
            with memoryview(item.data) as view:
                for start in pieces:
                    length = min(step, item.offset + item.length - start)
                    chunk = view[start - item.offset : start - item.offset + length] if item.op == "WRITE" else b""
                    self._produce_piece(item, start, length, start + step >= item.offset + item.length, chunk)
                    del chunk  # a slice alive would keep the view from being released
        item.data = b""

    def _produce_piece(self, item: WriteItem, offset: int, length: int, last: bool, chunk: bytes | memoryview) -> None:
        """One event of `item`: blocks [offset, offset + length) with `chunk` (empty unless WRITE)."""
        done = self._write_done(item, offset, length, last, self._next_seq)
        self._produce_event(item.micros, offset, length, item.op, chunk, done, batched=True)

    def _produce_event(
        self,
        micros: int,
        offset: int,
        length: int,
        op: str,
        chunk: bytes | memoryview,
        done: Any,
        *,
        batched: bool = False,
    ) -> None:
        """`chunk` may be a slice of the write's payload: it is hashed, compressed and copied into
        the event's value without a copy of its own first. `batched`: gathered for `_flush_batch`."""
        symbol, payload = compress(chunk, self.config.compression)
        value = self._encoder.encode(
            epoch=self._epoch, seq=self._next_seq, timestamp=micros, offset=offset, length=length, op=op,
            compression=symbol, data=payload, checksum=xxhash.xxh3_64_digest(chunk),
            generation=self.config.generation,
        )  # fmt: skip
        self.stats.last_seq = self._next_seq  # written by this thread only
        self.stats.events += 1
        self._next_seq += 1
        if batched:
            self._batch.append({"value": value, "key": self._key, "callback": done})
        else:
            self._produce(value, done)

    def _produce_marker(self, mark: MarkItem) -> None:
        after_seq = self._next_seq - 1
        record = records.marker(
            volume=self.volume.name, marker_id=records.new_marker_id(), kind=mark.kind, timestamp=now_micros(),
            epoch=self._epoch, after_seq=after_seq, label=mark.label, generation=self.config.generation,
        )  # fmt: skip
        with self.stats.lock:
            self.stats.markers += 1

        def done(err: RdKafkaError | None, _msg: Message) -> None:
            try:
                if err is None:
                    self.parked.confirmed(mark.ticket)
                    if mark.future is not None and not mark.future.done():
                        mark.future.set_result(None)
                    return
                self._link_lost(err)
                self._park(mark)
            finally:
                self._markers_out.discard(mark.ticket)

        self._markers_out.add(mark.ticket)
        self._produce(self._codec.encode("Marker", record), done)

    def _produce(self, value: bytes, done: Any) -> None:
        """One event on the volume's writes partition, waiting while librdkafka's queue is full.

        Once the link is lost nothing more is queued on this producer: the event fails at once
        (`done` gets an error, as from a delivery report), so no event can be delivered behind
        one that failed, and a full queue with the broker gone cannot hold the ship thread. The
        gathered write events go first (`_flush_batch`), so the partition keeps the seq order."""
        self._flush_batch()
        self._produce_to(self.topics.writes, value, done, self._partition)

    def _flush_batch(self, *, wait: bool = True) -> bool:
        """Hand the gathered write events to librdkafka in one call, in seq order (the holder of
        the shipper's lock).

        librdkafka queues a prefix of them: once its queue is full it refuses the rest of the
        batch, all of it (`_QUEUE_FULL`, and no delivery report for those), which is queued again
        once there is room, as `_produce_to` waits. `wait=False` (`ship_queued`, on the event
        loop) does not wait: the refused rest stays gathered, first in line, for the ship thread,
        and False is returned. Any other refusal, and a link already lost, fails the events
        refused: their reports say so (blocks dirty, link lost), and nothing more is queued on
        this producer. At stop it does not wait for room: what librdkafka refuses fails too."""
        batch, self._batch = self._batch, []
        producer = self._producer
        while batch and producer is not None:
            with self._queue_lock:  # against `_poll_loop`'s purge: nothing queued after it
                if not self.window.connected:
                    break
                queued = producer.produce_batch(self.topics.writes, batch, partition=self._partition)
            if queued == len(batch):
                return True
            refused = [message for message in batch if "_error" in message]
            if refused != batch[queued:] or any(m["_error"].code() != RdKafkaError._QUEUE_FULL for m in refused):
                for message in refused:
                    message["callback"](message.pop("_error"), None)
                return True
            for message in refused:
                del message["_error"]
            batch = refused
            if not wait:
                self._batch = batch
                return False
            if self._stopping.is_set():  # no wait for room at stop: a stalled broker would hold it
                break
            producer.poll(0.05)
            self.settle_reports()
        lost = self._refused()
        for message in batch:
            message["callback"](lost, None)
        return True

    def _produce_to(self, topic: str, value: bytes, done: Any, partition: int = -1) -> None:
        producer = self._producer
        assert producer is not None
        while True:
            with self._queue_lock:  # against `_poll_loop`'s purge: nothing queued after it
                if not self.window.connected:
                    break
                try:
                    producer.produce(topic, key=self._key, value=value, partition=partition, on_delivery=done)
                    return
                except BufferError:
                    if self._stopping.is_set():
                        break
            producer.poll(0.05)
            self.settle_reports()
        done(self._refused(), None)

    def _refused(self) -> RdKafkaError:
        """The error of an event never handed to librdkafka: the link lost, or the tracker stopping."""
        return RdKafkaError(RdKafkaError._PURGE_QUEUE, _LOST_AT_STOP if self._stopping.is_set() else _LOST)

    def _write_done(self, item: WriteItem, offset: int, length: int, last: bool, seq: int) -> Any:
        """The delivery report only queues its outcome (and the event's place, for the checkpoint);
        `settle_reports` handles them per batch."""
        reports = self._reports
        return lambda err, msg: reports.append((err, item, offset, length, last, -1 if err else msg.offset(), seq))

    def settle_reports(self) -> None:
        """Handle the queued delivery reports of write events at once: failed events' blocks to the
        dirty bitmap, then one update of the window, the activity log and the metrics."""
        with self._settle_lock:
            reports = self._reports
            if not reports:
                return
            settled = delivered = events = 0
            high_position = high_seq = -1  # the highest (position, seq), compared as a pair
            closed: list[int] = []
            finished: list[WriteItem] = []
            while reports:
                err, item, offset, length, last, position, seq = reports.popleft()
                if position > high_position or (position == high_position and seq > high_seq):
                    high_position, high_seq = position, seq
                if err is not None:
                    self._link_lost(err)
                    self._mark_dirty(offset, length)
                    item.failed = True
                else:
                    events += 1
                    delivered += length
                settled += length
                if last:
                    closed.append(item.ticket)
                item.remaining -= 1
                if item.remaining == 0:
                    finished.append(item)
            self.window.shipped(settled, closed)
            self._checkpoints.delivered(high_position, high_seq)
            self.activity.release_all([(item.offset, item.length) for item in finished])
            self.metrics.handled(events, delivered)
            for item in finished:
                self._answer(item)

    def _answer(self, item: WriteItem) -> None:
        """Every event of the item confirmed or its blocks dirty: complete the caller's future."""
        future = item.future
        if future is None:
            return
        # A future done already (cancelled by its caller) refuses the outcome without a change:
        # one hold of its lock per write instead of a `done()` check and then the set.
        try:
            if item.failed and self.image_fd is None:
                future.set_exception(
                    TrackerError(
                        f"volume {self.volume.name}: write at offset {item.offset} not confirmed by Kafka and "
                        "there is no image to publish it from later"
                    )
                )
            else:
                future.set_result(None)
        except InvalidStateError:
            pass

    def _mark_dirty(self, offset: int, length: int) -> None:
        block = self.volume.block_size
        self.dirty.add_range(offset // block, (offset + length) // block)
        with self.stats.lock:
            self.stats.dirty_recorded_blocks += length // block

    # -- the link down -------------------------------------------------------------------------
    def _divert_queue(self) -> None:
        self._flush_batch()  # fails them: the link is lost
        while (item := self.queue.take()) is not None:
            self._divert(item)

    def _divert(self, item: WriteItem | MarkItem) -> None:
        if isinstance(item, MarkItem):
            self._park(item)
            return
        self._mark_dirty(item.offset, item.length)
        item.failed = True
        self.window.shipped(item.length, [item.ticket])
        self.activity.release(item.offset, item.length)
        self._answer(item)

    def _park(self, mark: MarkItem) -> None:
        self.window.park(mark.ticket, mark)
        self.parked.hold(mark.ticket, mark.kind, mark.label)
        with self.stats.lock:
            self.stats.markers_parked += 1
        if mark.future is not None and not mark.future.done():
            mark.future.set_result(None)

    def _link_lost(self, err: object) -> None:
        if self.window.link_lost():
            log.warning("volume %s: Kafka delivery failed (%s); recording writes as dirty", self.volume.name, err)

    # -- draining the dirty bitmap -------------------------------------------------------------
    def _drain_one(self) -> bool:
        """Publish the first dirty run from the image; False when there is none."""
        block = self.volume.block_size
        run = self.dirty.take_run(self.config.extent_bytes // block)
        if run is None:
            return False
        first, count = run
        offset, length = first * block, count * block
        assert self.image_fd is not None
        data = pread_full(self.image_fd, length, offset, f"the image of volume {self.volume.name}")
        ticket = self.window.track(length)
        self.pace.spent(length)

        def done(err: RdKafkaError | None, msg: Message) -> None:
            if err is not None:
                self._link_lost(err)
            else:
                self._checkpoints.delivered(msg.offset() or 0, seq)
            self.dirty.settle_run(first, count, delivered=err is None)
            self.window.shipped(length, [ticket])
            if err is None:
                self.metrics.handled(1, length)
                with self.stats.lock:
                    self.stats.resynced_blocks += count

        seq = self._next_seq
        self._produce_event(now_micros(), offset, length, "WRITE", data, done)
        return True

    # -- connection ----------------------------------------------------------------------------
    def _reconnect(self) -> None:
        try:
            self.connect()
            with self.stats.lock:
                self.stats.reconnects += 1
        except TrackerError as exc:
            log.debug("volume %s: still disconnected: %s", self.volume.name, exc)

    def connect(self) -> None:
        """New producer, new epoch, seq continued from the partition's tail (shipper thread or start)."""
        self._retire_producer()
        try:
            count = len(topic_partitions(self.clients.admin(), self.topics.writes, 5))
            self._partition = volume_partition(self.volume.name, count)
            # Never below a seq this process saw confirmed: a tail read just after a leader change
            # can come back short (a fault run read 591 where epoch 3 had 797 confirmed), and a
            # short tail makes the new epoch reuse seqs the processor has folded.
            tail = max(self._find_tail(), self._checkpoints.latest[1])
        except TrackerError:
            raise
        except TopicMissingError as exc:
            raise TrackerError(f"volume {self.volume.name}: {exc}") from exc
        except (KafkaException, Exception) as exc:  # librdkafka surfaces timeouts as several types
            raise TrackerError(f"volume {self.volume.name}: cannot reach Kafka: {exc}") from exc
        self._epoch = self.state.next_epoch()
        self.stats.epoch = self._epoch
        # Above every seq this process assigned, confirmed or not: one in doubt (in flight when the
        # old producer was retired) can land after the tail was read. The processor skips the seqs
        # up to the EPOCH_START's `after_seq` (processors/admission.py); their blocks are dirty and
        # published again in this epoch.
        self._next_seq = max(tail, self.state.seq_hint, self._next_seq - 1) + 1
        self._producer = self.clients.producer(
            **{
                # Never time out an event in librdkafka: `_watch_stall` does (see there).
                "message.timeout.ms": 0,
                "queue.buffering.max.kbytes": self.config.queue_max_kbytes,
                "linger.ms": self.config.linger_ms,
            }
        )
        self._settled_out = True  # the latest checkpoint may be a settled one: unsettle before a seq
        after_seq = self._next_seq - 1
        record = records.marker(
            volume=self.volume.name, marker_id=records.new_marker_id(), kind="EPOCH_START", timestamp=now_micros(),
            epoch=self._epoch, after_seq=after_seq, generation=self.config.generation,
        )  # fmt: skip

        def started(err: RdKafkaError | None, msg: Message) -> None:
            if err is not None:
                self._link_lost(err)
            else:
                self._checkpoints.delivered(msg.offset() or 0, after_seq)

        self.window.link_up()  # up before the first event: `_produce` queues nothing on a lost link
        self._produce(self._codec.encode("Marker", record), started)
        log.info("volume %s: epoch %d, next seq %d", self.volume.name, self._epoch, self._next_seq)

    def _find_tail(self) -> int:
        """The volume's last seq on the writes partition: the seq of a settled checkpoint (one
        message read, with small fetches), else forward from an unsettled checkpoint, else
        backwards from the end (both with the scan's big fetches)."""
        writes, name = self.topics.writes, self.volume.name
        try:
            self._checkpoint_topic = ensure_checkpoint_topic(self.clients, self.topics)
        except KafkaError as exc:
            log.warning("volume %s: no seq checkpoints (%s); reconnects read the partition backwards", name, exc)
            self._checkpoint_topic = None
        purpose = f"tracker-tail-{name}"
        topic, checkpoint, tail = self._checkpoint_topic, None, None
        if topic is not None:
            consumer = reader(self.clients, purpose, **POINT_CONSUMER_CONFIG)
            try:
                checkpoint = read_checkpoint(consumer, topic, name, self._partition)
                if checkpoint is not None and checkpoint.settled:
                    tail = last_seq_from(consumer, writes, self._partition, name, checkpoint)
            finally:
                consumer.close()
        if tail is None:
            consumer = reader(self.clients, purpose, **SCAN_CONSUMER_CONFIG)
            try:
                if checkpoint is not None and not checkpoint.settled:
                    tail = last_seq_from(consumer, writes, self._partition, name, checkpoint)
                if tail is None:
                    log.info("volume %s: no usable checkpoint; reading %s[%d] backwards for the last seq",
                             name, writes, self._partition)  # fmt: skip
                    return last_seq(consumer, writes, self._partition, name)
            finally:
                consumer.close()
        assert checkpoint is not None
        self._checkpoints.delivered(checkpoint.offset, checkpoint.seq)
        return tail

    def _publish_settled(self) -> bool:
        """Ship thread (or stop), idle: a settled checkpoint if every produced BlockWrite is confirmed
        (the latest confirmed seq is the last one assigned). True if one was produced."""
        producer, topic = self._producer, self._checkpoint_topic
        if producer is None or topic is None or self._settled_out or not self.window.connected:
            return False
        self.settle_reports()
        offset, seq = self._checkpoints.latest
        if offset < 0 or seq != self._next_seq - 1 or self.window.unshipped_bytes:
            return False
        try:
            producer.produce(
                topic, key=self._key, value=encode_checkpoint(Checkpoint(self._partition, offset, seq, True))
            )
        except BufferError:
            return False
        self._settled_out = True
        return True

    def _may_assign_seqs(self) -> bool:
        """Ship thread, before the next seq: after a settled checkpoint, an unsettled one confirmed
        first (else the settled one could name a last seq that is not). False: the link failed."""
        self._last_seq_use = time.monotonic()
        if not self._settled_out:
            return True
        producer, topic = self._producer, self._checkpoint_topic
        assert producer is not None and topic is not None
        offset, seq = self._checkpoints.latest
        confirmed = threading.Event()
        failure: list[object] = []

        def done(err: RdKafkaError | None, _msg: Message) -> None:
            if err is not None:
                failure.append(err)
            confirmed.set()

        value = encode_checkpoint(Checkpoint(self._partition, offset, seq, False))
        self._produce_to(topic, value, done)
        deadline = time.monotonic() + self.config.delivery_timeout_ms / 1000 + 5
        while not confirmed.wait(0.05):  # ends at stop too: stop waits for the shipper's lock
            if self._stopping.is_set() or time.monotonic() > deadline:
                break
        if not confirmed.is_set() or failure:
            self._link_lost(failure[0] if failure else "the checkpoint was not confirmed")
            return False
        self._settled_out = False
        return True

    def _checkpoint(self) -> None:
        """Publish the highest confirmed offset when due (poll thread)."""
        producer, topic = self._producer, self._checkpoint_topic
        if producer is None or topic is None:
            return
        checkpoint = None if self._settled_out else self._checkpoints.due(time.monotonic(), self._partition)
        if checkpoint is not None:
            try:
                producer.produce(topic, key=self._key, value=encode_checkpoint(checkpoint))
            except BufferError:
                log.debug("volume %s: checkpoint skipped, the producer's queue is full", self.volume.name)

    def _retire_producer(self) -> None:
        """Settle every event of the previous producer before the partition's tail is read.

        An event still queued could otherwise be delivered (the broker back) after the tail was
        read and share its seq with the new epoch's first events, which consumers drop as
        repeats. Queued events are purged (their blocks become dirty); in-flight ones get until
        the delivery timeout to be confirmed or to fail.
        """
        self._flush_batch()
        old = self._producer
        if old is None:
            return
        self._producer = None
        old.purge(in_queue=True, in_flight=False)
        if old.flush(self.config.delivery_timeout_ms / 1000) > 0:
            old.purge()
            old.flush(1)
        self.settle_reports()

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            producer = self._producer
            if producer is None:
                time.sleep(0.05)
                continue
            if self.config.report_pause and self.window.unshipped_bytes:
                self._stopping.wait(self.config.report_pause)
                producer.poll(0)
            else:
                producer.poll(0.1)
            self.settle_reports()
            self._watch_stall()
            if not self.window.connected:
                # What waits in the queue fails now (its blocks dirty, its markers parked), not at the
                # next reconnect: a FLUSH must not wait for Kafka. The queue is a suffix of the epoch,
                # and under the lock no event can be queued behind the purge to land after a gap.
                with self._queue_lock:
                    producer.purge(in_queue=True, in_flight=False)
            self._checkpoint()

    def _watch_stall(self) -> None:
        """Events with Kafka and none settled for longer than the delivery timeout: the link is lost
        (poll thread).

        The clock runs while events are with librdkafka and none is settled, not from when the
        oldest write was admitted: writes queued behind a slow link that keeps confirming are a
        backlog, not a stall (`ShipWindow.stalled_for`).

        librdkafka never times an event out here (`message.timeout.ms` 0). When it did, events
        that timed out waiting in the partition's queue failed while later ones, queued behind
        them, were delivered once a new leader was up: a hole in the epoch's seqs, which stops
        every mirror at RESYNC_NEEDED (a CI fault run, broker-kill-one, lost seqs 593-665 of
        797). The idempotent producer does not cover timeouts, not even with
        `enable.gapless.guarantee`. Here the stall only marks the link lost; the reconnect then
        purges the old producer's whole queue (`_retire_producer`), whose events all come after
        every in-flight one, so what reaches the partition stays gap-free."""
        if not self.window.connected:
            return
        age = self.window.stalled_for()
        if age * 1000 > self.config.delivery_timeout_ms:
            self._link_lost(f"no event confirmed for {age:.1f} s")
