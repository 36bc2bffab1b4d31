"""`tidemark mirror`: consume a volume's change sets from Kafka and apply them to its mirror.

Per applied set: undo saved (synced) -> mirror written and fsynced -> progress saved -> offset
committed -> MirrorStatus published. The progress file, not the committed offset, decides where
to resume (a revert moves it backwards); the commit under group `tidemark-mirror-<site>.<volume>`
lets the usual Kafka tooling show each site's lag.

A mirror that was away longer than the topic's retention (its resume offset is below the
partition's low watermark, or the next set it needs is gone) is recorded RESYNC_NEEDED and the
applier exits with ResyncNeededError: only `tidemark resync` brings it back. A full disk is a
waiting state: the applier reports ERROR with the reason, re-reads the set from its recorded
offset every `disk_full_retry_s` and goes on once the set applies.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from tidemark.core.kafka import KafkaClients
from tidemark.core.metrics import StageMetrics
from tidemark.core.topics import Topics
from tidemark.core.volumes import lookup_volume
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .dead_letters import dead_letter
from .disk_full import is_disk_full
from .exceptions import ChangeSetGapError, InvalidChangeSetError, MirrorDiskFullError, SinkError
from .layout import MirrorLayout, exclusive
from .mirror import Mirror
from .progress import ERROR, REPLICATING
from .retention import KEEP_ALL, Retention
from .status import publish_status, status_record
from .stream_applier import Applied, StreamApplier
from .topic_reader import partitions_of

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 1.0
HEARTBEAT_INTERVAL_S = 10.0
POLL_S = 0.2


@dataclass
class ApplierOptions:
    volume: str
    path: Path
    site: str = "default"
    retention: Retention = KEEP_ALL
    until_rp: int | None = None
    exit_when_idle: float | None = None
    disk_full_retry_s: float = 5.0


@dataclass
class RunSummary:
    changesets: int = 0
    bytes: int = 0
    dead_letters: int = 0
    expired: list[int] = field(default_factory=list)
    changeset_id: int = 0
    rp_id: int | None = None
    disk_full: int = 0  # change sets that met a full disk (each was applied again later)


def group_id(site: str, volume: str) -> str:
    return f"tidemark-mirror-{site}.{volume}"


class Applier:
    def __init__(self, clients: KafkaClients, topics: Topics, state_dir: Path, options: ApplierOptions) -> None:
        self.clients = clients
        self.topics = topics
        self.options = options
        self.layout = MirrorLayout.of(state_dir, options.site, options.volume)
        self.summary = RunSummary()
        self._key = options.volume.encode()
        self._at_eof: dict[int, bool] = {}
        self._last_activity = time.monotonic()
        self._last_status = 0.0
        self._changed = False
        self.metrics = StageMetrics("mirror", options.volume)
        self._stop = threading.Event()

    def run(self, stop: threading.Event) -> RunSummary:
        self._stop = stop
        with exclusive(self.layout, "apply change sets"):
            spec = lookup_volume(self.clients, self.topics, self.options.volume)
            mirror = Mirror.create_or_open(self.layout, self.options.path, spec.size, spec.block_size)
            try:
                mirror.require_not_reverting()
                mirror.require_not_promoted("apply change sets")
                mirror.require_not_resync_needed()
                mirror.progress.state = REPLICATING
                self._run(mirror, stop)
            finally:
                mirror.close()
        return self.summary

    def _run(self, mirror: Mirror, stop: threading.Event) -> None:
        self.summary.expired += mirror.expire(self.options.retention, _now_ms())
        stream = StreamApplier(mirror, self.options.volume, self.layout.spool)
        consumer = self.clients.consumer(
            group_id(self.options.site, self.options.volume), **{"enable.partition.eof": True}
        )
        producer = self.clients.producer()
        try:
            self._assign(consumer, mirror)
            self._check_retention(consumer, producer, mirror)
            self._status(producer, consumer, mirror, force=True)
            while not stop.is_set() and not self._done(mirror):
                msg = consumer.poll(POLL_S)
                if msg is not None:
                    self._on_message(msg, consumer, producer, stream)
                self._status(producer, consumer, mirror)
            self._status(producer, consumer, mirror, force=True)
        finally:
            stream.close()
            consumer.close()
            producer.flush(30)
        self.summary.changeset_id = mirror.progress.changeset_id
        self.summary.rp_id = mirror.progress.rp_id

    def _assign(self, consumer: Consumer, mirror: Mirror) -> None:
        state = mirror.progress
        topic = self.topics.changesets
        partitions = partitions_of(consumer, topic)
        if state.partition is not None and state.next_offset is not None:
            if state.partition not in partitions:
                raise SinkError(f"{topic} has no partition {state.partition} recorded by the mirror")
            assignment = [TopicPartition(topic, state.partition, state.next_offset)]
        else:
            assignment = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        consumer.assign(assignment)
        self._at_eof = {tp.partition: False for tp in assignment}

    def _check_retention(self, consumer: Consumer, producer: Producer, mirror: Mirror) -> None:
        """A resume offset below the low watermark: retention deleted events this mirror needed."""
        state = mirror.progress
        if state.partition is None or state.next_offset is None:
            return
        low, _ = consumer.get_watermark_offsets(
            TopicPartition(self.topics.changesets, state.partition), timeout=10.0
        )
        if state.next_offset >= low:
            return
        mirror.mark_resync_needed(
            f"the mirror resumes at offset {state.next_offset} of {self.topics.changesets}"
            f"[{state.partition}] (after change set {state.changeset_id}) but the partition now "
            f"starts at offset {low}: change sets it needed were deleted by retention while it was offline"
        )
        self._resync_needed(producer, consumer, mirror)

    def _resync_needed(self, producer: Producer, consumer: Consumer, mirror: Mirror) -> None:
        log.error("volume %s: %s", self.options.volume, mirror.progress.message)
        self._status(producer, consumer, mirror, force=True)
        producer.flush(30)
        mirror.require_not_resync_needed()

    def _on_message(self, msg: Message, consumer: Consumer, producer: Producer, stream: StreamApplier) -> None:
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._at_eof[msg.partition()] = True
                return
            if error.retriable() or not error.fatal():
                log.warning("consumer error on %s: %s", self.topics.changesets, error)
                return
            raise SinkError(f"consuming {self.topics.changesets} failed: {error}")
        self._at_eof[msg.partition()] = False
        if msg.key() != self._key:
            return
        self._last_activity = time.monotonic()
        if len(self._at_eof) > 1:  # the volume's partition is now known: read only that one
            consumer.assign([TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)])
            self._at_eof = {msg.partition(): False}
        try:
            record_type, record = default_codec().decode(msg.value() or b"")
            applied = stream.handle(record_type, record, msg.partition(), msg.offset())
        except ChangeSetGapError:
            self._resync_needed(producer, consumer, stream.mirror)  # raises ResyncNeededError
            raise
        except (MirrorDiskFullError, OSError) as exc:
            if not is_disk_full(exc):
                raise
            self._disk_full(exc, msg, consumer, producer, stream)
            return
        except (DecodeError, InvalidChangeSetError) as exc:
            log.error("dead letter at %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), exc)
            dead_letter(producer, self.topics, msg, str(exc), self.options.volume)
            self.summary.dead_letters += 1
            self.metrics.dead_letter()
            self._status(producer, consumer, stream.mirror, force=True)
            return
        if applied is not None:
            self._after_apply(applied, msg, consumer, producer, stream.mirror)

    def _disk_full(
        self, exc: BaseException, msg: Message, consumer: Consumer, producer: Producer, stream: StreamApplier
    ) -> None:
        """Report, forget the half-received set, wait, then re-read it from the recorded offset."""
        mirror = stream.mirror
        state = mirror.progress
        reason = str(exc) if isinstance(exc, MirrorDiskFullError) else (
            f"disk full while receiving change set {stream.applied + 1} of volume "
            f"{self.options.volume!r} into {self.layout.spool}: {exc}; free space on that "
            f"filesystem, the mirror stays at change set {state.changeset_id}"
        )
        log.error("%s; retrying every %.1f s", reason, self.options.disk_full_retry_s)
        self.summary.disk_full += 1
        state.state, state.message = ERROR, reason  # in memory only: the disk is full
        self._status(producer, consumer, mirror, force=True)
        stream.buffer.reset()
        stream.blocked_at = None
        resume = state.next_offset if state.partition == msg.partition() and state.next_offset is not None else OFFSET_BEGINNING
        consumer.assign([TopicPartition(msg.topic(), msg.partition(), resume)])
        self._at_eof = {msg.partition(): False}
        while not self._stop.wait(self.options.disk_full_retry_s):
            try:
                mirror.reopen_undo()
                return
            except Exception as again:  # rocksdict raises plain Exception
                if not is_disk_full(again):
                    raise
                log.error("volume %s: still no space for the undo store: %s", self.options.volume, again)

    def _after_apply(
        self, applied: Applied, msg: Message, consumer: Consumer, producer: Producer, mirror: Mirror
    ) -> None:
        consumer.commit(
            offsets=[TopicPartition(msg.topic(), msg.partition(), msg.offset() + 1)], asynchronous=True
        )
        self.summary.changesets += 1
        self._changed = True
        self.summary.bytes += applied.bytes
        self.metrics.handled(1, applied.bytes)
        self.metrics.lag(time.time() - applied.sealed_at / 1000)
        if applied.rp_id is not None:
            self.metrics.recovery_point()
            self.summary.expired += mirror.expire(self.options.retention, _now_ms())
            log.info("volume %s: recovery point %d complete", self.options.volume, applied.rp_id)
        self._status(producer, consumer, mirror, force=applied.rp_id is not None)

    def _status(self, producer: Producer, consumer: Consumer, mirror: Mirror, force: bool = False) -> None:
        """Publish after a new recovery point or an error at once, after other sets at most 1/s."""
        now = time.monotonic()
        elapsed = now - self._last_status
        due = elapsed >= HEARTBEAT_INTERVAL_S or (self._changed and elapsed >= STATUS_INTERVAL_S)
        if not (force or due):
            return
        self._last_status, self._changed = now, False
        lag_events = self._lag_events(consumer)
        sealed_at = mirror.progress.sealed_at
        lag_seconds = 0.0 if lag_events == 0 or sealed_at is None else max(0.0, time.time() - sealed_at / 1000)
        publish_status(producer, self.topics, status_record(mirror.progress, lag_events, lag_seconds))

    def _lag_events(self, consumer: Consumer) -> int:
        """Offsets not yet consumed. The processor writes in transactions, so the partition's last
        offset is usually a commit marker no consumer ever sees: one offset is not lag."""
        lag = 0
        try:
            for tp in consumer.position(consumer.assignment()):
                _, high = consumer.get_watermark_offsets(tp, timeout=2.0)
                if tp.offset >= 0:
                    lag += max(0, high - tp.offset - 1)
                else:
                    low, _ = consumer.get_watermark_offsets(tp, timeout=2.0)
                    lag += max(0, high - low)
        except Exception as exc:  # confluent_kafka raises KafkaException on a broker timeout
            log.warning("cannot read watermarks of %s: %s", self.topics.changesets, exc)
        return lag

    def _done(self, mirror: Mirror) -> bool:
        until = self.options.until_rp
        if until is not None and (mirror.progress.rp_id or 0) >= until:
            return True
        idle = self.options.exit_when_idle
        return (
            idle is not None
            and all(self._at_eof.values())
            and time.monotonic() - self._last_activity >= idle
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
