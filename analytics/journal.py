"""The analytics app's reader of the writes journal: a librdkafka consumer in its own consumer
group (`<app id>-journal`), handing batches of messages to the engine on the app's event loop.

Why not a faust agent: the journal carries every write's data (64 KiB per message at the
tracker's sustained rate). faust's aiokafka consumer costs about 250 µs of CPU per such message
in the copies of its fetch path, and faust's stream machinery about 550 µs more, so a faust agent
tops out near 1,200 messages/s on a whole core, below the rate of one tracker (figure 10).
librdkafka fetches in its own threads and costs about 60 µs per message.

At-least-once: offsets are committed every `commit_interval_s` and when the reader stops, and
only after the engine's state of every handled message was logged (`Engine.flush_all`, state
topics) and the producer flushed its queue (that state and the alerts of those messages). After
a crash, the messages since the last commit are handled again: an alert may be published twice
under the same alert_id (consumers dedupe by it).

Threads: `consume` and `commit` run on one executor thread (the consumer is used by that thread
only); the engine is used on the event loop thread only, as by the faust agents and web views.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from .engine import Alert, Engine
from .exceptions import AnalyticsError
from .metrics import AnalyticsMetrics

log = logging.getLogger(__name__)

BATCH = 1000
POLL_S = 0.2
FLUSH_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 120.0
READY_POLL_S = 0.2
# librdkafka's fetch sizes: a fetch holds many 64 KiB writes, so round trips do not bound the rate.
FETCH_OVERRIDES: dict[str, int] = {"fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20}


class Positions:
    """The next offset to commit per partition of one topic: after the last handled message."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._next: dict[int, int] = {}
        self._committed: dict[int, int] = {}

    def handled(self, partition: int, offset: int) -> None:
        self._next[partition] = offset + 1

    def pending(self) -> list[TopicPartition]:
        """The positions handled since the last commit (empty when nothing new)."""
        return [TopicPartition(self.topic, p, o) for p, o in sorted(self._next.items()) if self._committed.get(p) != o]

    def committed(self, offsets: list[TopicPartition]) -> None:
        self._committed.update({tp.partition: tp.offset for tp in offsets})

    def forget(self, partitions: list[int]) -> None:
        """Partitions taken away by a rebalance: their new owner commits them from now on."""
        for partition in partitions:
            self._next.pop(partition, None)
            self._committed.pop(partition, None)


class DeliveryWatch:
    """The producer's delivery callback (errors only): counts the messages librdkafka gave up on."""

    def __init__(self) -> None:
        self.failures = 0

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        self.failures += 1
        log.error("analytics could not deliver a message to %s partition %s: %s",
                  message.topic(), message.partition(), error)  # fmt: skip


class JournalReader:
    """Reads `topic` from the committed offsets of `group` until cancelled (see the module docstring)."""

    def __init__(
        self, consumer: Consumer, producer: Producer, topic: str, engine: Engine,
        publish: Callable[[list[Alert]], None], metrics: AnalyticsMetrics, commit_interval_s: float,
        undelivered: DeliveryWatch,
    ) -> None:  # fmt: skip
        self.consumer = consumer
        self.producer = producer
        self.engine = engine
        self.publish = publish
        self.metrics = metrics
        self.commit_interval_s = commit_interval_s
        self.undelivered = undelivered
        self.positions = Positions(topic)
        self.topic = topic

    async def run(self, ready: Callable[[], bool]) -> None:
        """Wait until `ready()` (at most READY_TIMEOUT_S), then read until cancelled.

        `ready` says when the recovery points present at startup were handled: replaying a
        journal backlog runs its message-time clock far ahead of the wall clock, so a pending
        encryption alert would otherwise give up waiting for points that are merely not read yet.
        """
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready():
            if time.monotonic() > deadline:
                log.warning("journal %s: recovery points not read in %.0f s; reading the journal anyway",
                            self.topic, READY_TIMEOUT_S)  # fmt: skip
                break
            await asyncio.sleep(READY_POLL_S)
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(1, thread_name_prefix="analytics-journal")
        self.consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked)
        last_commit = time.monotonic()
        try:
            while True:
                batch = await loop.run_in_executor(executor, self._next_batch)
                self.handle(batch)
                if time.monotonic() - last_commit >= self.commit_interval_s:
                    self.engine.flush_all()
                    await loop.run_in_executor(executor, self.commit)
                    last_commit = time.monotonic()
        finally:
            executor.shutdown(wait=True)
            try:
                self.engine.flush_all()
                self.commit()
            finally:
                self.consumer.close()

    def _next_batch(self) -> list[Message]:
        """What librdkafka has fetched already (up to BATCH), else the first message within POLL_S.

        `consume(n, timeout)` waits for n messages or the timeout, so a blocking call for a whole
        batch would idle while the fetcher refills its queue; a non-blocking one takes what is there.
        """
        batch = self.consumer.consume(BATCH, 0)
        return batch if batch else self.consumer.consume(1, POLL_S)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Called by librdkafka inside `consume`, on the executor thread (never during `handle`)."""
        self.metrics.journal_partitions.inc(len(partitions))

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Called by librdkafka inside `consume`, on the executor thread (never during `handle`)."""
        self.positions.forget([tp.partition for tp in partitions])
        self.metrics.journal_partitions.dec(len(partitions))

    def handle(self, batch: list[Message]) -> None:
        """Fold a batch of journal messages, in partition order, and publish their alerts."""
        newest = 0.0
        handled = 0
        for msg in batch:
            error = msg.error()
            partition, offset = msg.partition(), msg.offset()
            if error is not None and error.fatal():
                raise AnalyticsError(f"reading the journal {self.topic} failed for good ({error}); restart the app")
            if error is not None or partition is None or offset is None:
                log.warning("journal %s: %s", self.topic, error)
                continue
            now_ms = msg.timestamp()[1]
            self.publish(self.engine.on_writes(msg.key(), msg.value(), partition, now_ms))
            self.positions.handled(partition, offset)
            newest = max(newest, now_ms / 1000)
            handled += 1
        if handled:
            self.metrics.seen("writes", newest, handled)

    def commit(self) -> None:
        """Flush the producer (state and alerts of every handled message), then commit the offsets."""
        offsets = self.positions.pending()
        if not offsets:
            return
        left = self.producer.flush(FLUSH_TIMEOUT_S)
        if self.undelivered.failures:
            # State or alerts of handled messages are lost: never commit past them; a restarted
            # app handles them again from the last commit.
            raise AnalyticsError(
                f"journal {self.topic}: {self.undelivered.failures} state/alert messages were not delivered "
                "(see the errors above); restart the app, it resumes from its last commit"
            )
        if left:
            log.warning("journal %s: %d state/alert messages undelivered; offsets not committed", self.topic, left)
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Not committed: those messages are handled again after a restart (at-least-once).
            log.warning("journal %s: commit of %s failed: %s", self.topic, offsets, exc)
            return
        self.positions.committed(offsets)
