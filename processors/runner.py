"""The runner: the exactly-once consume-fold-produce loop (the confluent-kafka transactional pattern).

Per batch of writes: one Kafka transaction holds every output (change sets, recovery points,
metrics, dead letters), every state change (the changelog) and the consumed offsets. Either all
of it is committed or none of it is; after a crash the next worker restores the state from the
changelog and resumes from the committed offsets, so it emits exactly what an uninterrupted run
would have. Several workers may run: each owns the writes partitions the group assigns it.

The changelog carries states and checksum lists, never block data: on assignment the runner
restores the changelog, then re-folds the journal from the oldest open sub-interval up to the
committed position (handler.refold) to rebuild the block refs, before the first message.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from tidemark.core import kafka_io
from tidemark.core.kafka import KafkaClients
from tidemark.core.partitioning import volume_partition
from tidemark.core.topics import Topics

from . import kafka_config
from .batch_sizer import DEFAULT_BATCH_BYTES, BatchSizer
from .changelog import changelog_topic, ensure_changelog, restore
from .exceptions import ProcessorError
from .fold_volume import FoldOptions
from .handler import Handler
from .journal_reader import JournalReader
from .kafka_emitter import KafkaEmitter
from .recent_writes import DEFAULT_CACHE_BYTES, RecentWrites
from .registry_cache import RegistryCache
from .state_store import PartitionStore
from .ticker import Ticker, TickerThread
from .watchdog import Watchdog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessorOptions:
    fold: FoldOptions = field(default_factory=FoldOptions)
    tick_interval: float = 0.1
    """seconds between ticks into every writes partition; 0: none (the log's own ticks only)"""
    batch_size: int = 500
    """most messages in one transaction"""
    batch_bytes: int = DEFAULT_BATCH_BYTES
    """message bytes per transaction to aim for: the block data in Python at once (batch_sizer.py)"""
    worker_id: str = "1"
    """stable per worker: a restarted worker with the same id fences its crashed predecessor"""
    app_id: str = "processor"
    offsets_timeout: float = 10.0
    """seconds for sending the consumed offsets into a transaction (a small request on a healthy
    cluster); past it, plus `WATCHDOG_GRACE_S`, the worker exits for a restart (see watchdog.py)"""
    commit_timeout: float = 60.0
    write_cache_bytes: int = DEFAULT_CACHE_BYTES
    """bound of the cache of recent writes; a seal reads what is not there back from the journal"""


WATCHDOG_GRACE_S = 5.0
POLL_S = 0.05
"""longest wait for a batch to fill: a trickle of writes commits at least this often"""


class ProcessorWorker:
    def __init__(self, clients: KafkaClients, options: ProcessorOptions) -> None:
        self.clients = clients
        self.options = options
        settings = clients.settings
        self.topics = Topics(settings.topic_prefix)
        self.changelog = changelog_topic(settings.topic_prefix, options.app_id)
        self.state_dir = Path(settings.state_dir) / "processor" / options.worker_id
        self.group = f"{settings.topic_prefix}-{options.app_id}"
        self.stores: dict[int, PartitionStore] = {}
        self._keyed_outputs: dict[str, int] = {}
        self.stop_event = threading.Event()
        member = f"{self.group}-{options.worker_id}"
        self._producer = clients.producer(**kafka_config.output_producer(member))
        self._consumer = clients.consumer(self.group, **kafka_config.input_consumer(member))
        self._watchdog = Watchdog()
        self._sizer = BatchSizer(options.batch_size, options.batch_bytes)
        emitter = KafkaEmitter(self.topics, self._produce, settings.message_max_bytes)
        self._journal = JournalReader(clients, self.topics.writes)
        self.handler = Handler(
            emitter,
            RegistryCache(clients, self.topics),
            options.fold,
            RecentWrites(options.write_cache_bytes),
            self._journal,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self) -> None:
        found = kafka_io.wait_for_partitions(self._consumer, self.topics.writes, self.stop_event, "processor")
        if found is None:  # stopped while waiting
            self._consumer.close()
            self._journal.close()
            return
        partitions = len(found)
        self._watchdog.start()
        self._keyed_outputs = {
            topic: self._partitions_of(topic)
            for topic in (self.topics.changesets, self.topics.recovery_points, self.topics.metrics)
        }
        ensure_changelog(self.clients, self.changelog, partitions)
        try:
            self._producer.init_transactions(30)
        except KafkaException as exc:
            raise ProcessorError(f"cannot start a Kafka transaction (is the broker up?): {exc}") from exc
        ticker = None
        if self.options.tick_interval > 0:
            ticker = TickerThread(Ticker(self.clients, self.topics.writes, partitions), self.options.tick_interval)
        self._consumer.subscribe([self.topics.writes], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            if ticker is not None:
                ticker.start()
            while not self.stop_event.is_set():
                messages = self._consumer.consume(self._sizer.count(), timeout=POLL_S)
                if messages:
                    self._process_batch(messages)
        finally:
            if ticker is not None:
                ticker.stop()
            self._consumer.close()
            self._journal.close()
            for store in self.stores.values():
                store.close()
            self.stores.clear()
            self._watchdog.close()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_event.set())

    # -- the transaction -----------------------------------------------------------------------
    def _process_batch(self, messages: list[Any]) -> None:
        self._producer.begin_transaction()
        try:
            self._sizer.took([self._handle(msg) for msg in messages])
            for partition, store in self.stores.items():
                self.handler.flush(partition)
                for key, value in store.take_pending():
                    self._produce_raw(self.changelog, key, value, partition)
            positions = self._consumer.position(self._consumer.assignment())
            timeout = self.options.offsets_timeout
            with self._watchdog.guard("sending the consumed offsets to the transaction", timeout + WATCHDOG_GRACE_S):
                self._producer.send_offsets_to_transaction(positions, self._consumer.consumer_group_metadata(), timeout)
            timeout = self.options.commit_timeout
            with self._watchdog.guard("committing the transaction", timeout + WATCHDOG_GRACE_S):
                self._producer.commit_transaction(timeout)
        except KafkaException as exc:
            raise ProcessorError(
                f"Kafka transaction failed ({exc}); the worker stops so that a restart resumes from "
                "the last committed state"
            ) from exc

    def _handle(self, msg: Any) -> int:
        """Handle one consumed message; returns its size in bytes."""
        error = msg.error()
        if error is not None:
            if error.fatal():
                # e.g. a static member fenced after the whole cluster was down longer than the session
                # timeout: this consumer can never read again, and polling it would stall the volume.
                raise ProcessorError(
                    f"consuming {self.topics.writes} failed for good ({error}); the worker stops so that a "
                    "restart rejoins the group and resumes from the last committed state"
                )
            log.warning("consumer error on %s: %s", self.topics.writes, error)
            return 0
        partition = msg.partition()
        value = msg.value()
        if partition in self.stores:
            _kind, ts_ms = msg.timestamp()
            self.handler.handle(partition, msg.offset(), msg.key(), value, ts_ms / 1000.0)
        return len(value) if value else 0

    def _produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Outputs keyed by volume go to the volume's partition (`volume_partition`), like its writes,
        so a reader of one volume reads one partition of each topic."""
        count = self._keyed_outputs.get(topic)
        partition = volume_partition(key.decode(errors="replace"), count) if count and key else None
        self._produce_raw(topic, key, value, partition)

    def _produce_raw(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None) -> None:
        kafka_io.produce(self._producer, topic, value, key=key, partition=partition)

    # -- rebalancing ---------------------------------------------------------------------------
    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            store = PartitionStore(self.state_dir / f"partition-{tp.partition}")
            records = restore(self.clients, self.changelog, tp.partition, store)
            self.stores[tp.partition] = store
            self.handler.assign(tp.partition, store)
            self._check_retention(tp.partition)
            refolded = self._refold(tp.partition)
            log.info("partition %d: restored %d state records, re-folded %d writes", tp.partition, records, refolded)

    def _check_retention(self, partition: int) -> None:
        """Never resume past retention silently (handler.journal_trimmed): resyncs instead, logged."""
        tp = TopicPartition(self.topics.writes, partition)
        (committed,) = self._consumer.committed([tp], timeout=30)
        low, _high = self._consumer.get_watermark_offsets(tp, timeout=30)
        position = committed.offset if committed.offset >= 0 else low
        lost = self.handler.journal_trimmed(partition, position, low)
        if lost:
            log.warning(
                "%s[%d]: retention deleted offsets below %d (committed position %d): resync requested for %s",
                self.topics.writes,
                partition,
                low,
                committed.offset,
                ", ".join(lost),
            )

    def _refold(self, partition: int) -> int:
        start = self.handler.refold_start(partition)
        if start is None:
            return 0
        (committed,) = self._consumer.committed([TopicPartition(self.topics.writes, partition)], timeout=30)
        if committed.offset < 0:
            raise ProcessorError(
                f"{self.topics.writes}[{partition}]: the state has an open sub-interval from offset {start} "
                "but the group committed no position; delete the state changelog to start over"
            )
        return self.handler.refold(partition, self._journal.scan(partition, start, committed.offset))

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.handler.revoke(tp.partition)
            store = self.stores.pop(tp.partition, None)
            if store is not None:
                store.close()

    def _partitions_of(self, name: str) -> int:
        return len(kafka_io.topic_partitions(self._consumer, name, 30))
