"""Kafka I/O that every stage shares: a topic's partitions, reading to an end, producing.

- `topic_partitions`: a topic's partition ids, with the one "run `tidemark topics create`" error.
- `watermarks`: a partition's (low, high) offsets; a read_committed consumer gets the last stable
  offset as `high`. On request, retried while a new topic's partition has no leader yet.
- `reader`: a throwaway consumer (no group commits, read_committed, end-of-file events).
- `read_to_end`: the messages of some partitions from their starts to the ends captured when the
  read starts (see `kafka_ends` for where a partition stops), as a generator: memory stays bounded
  whatever the topic's size. `read_topic` does that for a whole topic with its own reader.
- `read_backwards`: a partition's tail in growing windows, newest window first, until the caller's
  predicate is satisfied after a window.
- `produce`: one bounded policy for a full producer queue (BufferError): serve delivery reports and
  retry until a deadline, then fail with an error that names the topic.

Reads fail with ReadError (a KafkaError) on an error that librdkafka does not retry, when they
stall (nothing read and the position not moving for `stall` seconds) or exceed their overall
`timeout`; either limit can be None, and every caller sets at least one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka.admin import AdminClient

from .exceptions import KafkaAuthenticationError, KafkaError, TopicMissingError
from .kafka import KafkaClients
from .kafka_ends import ReadEnds, tail_windows

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 15.0
STALL_S = 60.0
BATCH = 2048
POLL_S = 0.5
FIRST_WINDOW = 256
PRODUCE_BLOCK_S = 120.0
"""How long `produce` waits for room in a full producer queue before it gives up."""
PRODUCE_POLL_S = 0.05
WATERMARK_RETRY_S = 0.5
CLUSTER_RETRY_S = 5.0
"""a daemon waiting for an unreachable cluster at start (`wait_for_partitions`) waits this long for
the metadata, then this long again before the next try"""
WAITING_LOG_S = 60.0
"""how often `wait_for_partitions` says again that it is still waiting"""
AUTH_REFUSED = frozenset({RdKafkaError._AUTHENTICATION, RdKafkaError.SASL_AUTHENTICATION_FAILED})
TRANSIENT = frozenset({RdKafkaError._TRANSPORT, RdKafkaError._ALL_BROKERS_DOWN, RdKafkaError._TIMED_OUT})
"""Client errors a read waits out (a broker restarting): librdkafka reconnects and fetches again."""
NO_LEADER_YET = frozenset(
    {RdKafkaError.NOT_LEADER_FOR_PARTITION, RdKafkaError.LEADER_NOT_AVAILABLE, RdKafkaError.UNKNOWN_TOPIC_OR_PART}
)


class ReadError(KafkaError):
    """A read of a topic failed, stalled or did not reach its end in time."""


class ProduceError(KafkaError):
    """The producer's queue stayed full past the deadline: the cluster does not take messages."""


def topic_partitions(
    client: Consumer | Producer | AdminClient, topic: str, timeout: float = METADATA_TIMEOUT_S
) -> list[int]:
    """The partition ids of `topic`, sorted. A topic that does not exist (or has no partitions)
    raises TopicMissingError naming it and `tidemark topics create`; unreadable metadata, KafkaError."""
    try:
        metadata = client.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaError(f"cannot read the metadata of topic {topic}: {exc}; is the broker up?") from exc
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise TopicMissingError(
            f"topic {topic} does not exist: run `tidemark topics create` (with the same TIDEMARK_TOPIC_PREFIX)"
        )
    return sorted(found.partitions)


def wait_for_partitions(
    client: Consumer | Producer | AdminClient, topic: str, stop: threading.Event, who: str
) -> list[int] | None:
    """`topic_partitions`, waiting for the cluster: a daemon (`who`, for the log) started while its
    brokers are down or unreachable tries again (see `CLUSTER_RETRY_S`) and starts once they
    answer, instead of exiting; it logs that it waits, and again every `WAITING_LOG_S`. A missing
    topic or refused credentials still fail at once; None when `stop` is set while waiting.

    Only the first answer is waited for: a step after it that finds the cluster gone again fails
    as before (the daemon exits, and its supervisor starts it again)."""
    waiting_since: float | None = None
    logged = 0.0
    while not stop.is_set():
        try:
            partitions = topic_partitions(client, topic, CLUSTER_RETRY_S)
        except KafkaError as exc:
            if refused(exc):
                raise KafkaAuthenticationError(f"{who}: Kafka refused the credentials: {exc}") from exc
            now = time.monotonic()
            if waiting_since is None or now - logged >= WAITING_LOG_S:
                waiting_since = now if waiting_since is None else waiting_since
                logged = now
                log.warning(
                    "%s: waiting for Kafka for %.0f s (%s); trying again every %.0f s",
                    who, now - waiting_since, exc, 2 * CLUSTER_RETRY_S,
                )  # fmt: skip
            stop.wait(CLUSTER_RETRY_S)
            continue
        if waiting_since is not None:
            log.info("%s: Kafka answered after %.0f s; starting", who, time.monotonic() - waiting_since)
        return partitions
    return None


def refused(exc: KafkaError) -> bool:
    """The metadata request failed because the cluster refused this client's credentials."""
    cause = exc.__cause__
    error = cause.args[0] if isinstance(cause, KafkaException) and cause.args else None
    return isinstance(error, RdKafkaError) and error.code() in AUTH_REFUSED


def watermarks(
    consumer: Consumer,
    topic: str,
    partition: int,
    timeout: float = METADATA_TIMEOUT_S,
    *,
    wait_for_leader: bool = False,
) -> tuple[int, int]:
    """(low, high) offsets of a partition; ReadError naming the partition when they cannot be read.
    With `wait_for_leader`, retriable errors (a new topic's partition without a leader yet) are
    retried up to `timeout`; without, the first error fails (a tracker reconnecting to a cluster
    that is down gives up at once and tries again later)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(error, RdKafkaError) and (error.retriable() or error.code() in NO_LEADER_YET)
            if not (wait_for_leader and retriable) or time.monotonic() > deadline:
                raise ReadError(
                    f"cannot read the offsets of {topic}[{partition}]: {exc}; "
                    "check the broker (`tidemark kafka status`) and try again"
                ) from exc
            time.sleep(WATERMARK_RETRY_S)


def reader(clients: KafkaClients, purpose: str, **config: Any) -> Consumer:
    """A consumer for reads by assignment: a group of its own that never commits, end-of-file
    events on (`read_to_end` needs none of them, but ends a partition sooner with them)."""
    return clients.consumer(f"tidemark-{purpose}-{uuid.uuid4().hex}", **({"enable.partition.eof": True} | config))


def read_topic(
    clients: KafkaClients,
    topic: str,
    partitions: Iterable[int] | None = None,
    *,
    timeout: float | None = None,
    stall: float | None = STALL_S,
) -> Iterator[Message]:
    """Every message of `topic` (or of the given partitions) present when the read starts, each
    partition in offset order, read by a reader of its own (closed when the generator ends)."""
    consumer = reader(clients, "read")
    try:
        parts = topic_partitions(consumer, topic) if partitions is None else list(partitions)
        yield from read_to_end(consumer, topic, dict.fromkeys(parts, 0), timeout=timeout, stall=stall)
    finally:
        consumer.close()


def read_to_end(
    consumer: Consumer,
    topic: str,
    starts: Mapping[int, int],
    ends: Mapping[int, int] | None = None,
    *,
    timeout: float | None = None,
    stall: float | None = STALL_S,
) -> Iterator[Message]:
    """The messages of the partitions in `starts` (partition -> first offset; OFFSET_BEGINNING or
    an offset below the low watermark reads from the oldest kept) up to `ends` (excluded), by
    default the high watermarks when the read starts. Assigns the consumer and unassigns it.

    A start is resolved against the partition's low watermark whenever the watermarks are read
    (no `ends` given, or a logical start such as OFFSET_BEGINNING), so a partition with nothing
    kept is done at once, even on a consumer without end-of-file events."""
    started = time.monotonic()
    limit = METADATA_TIMEOUT_S if timeout is None else timeout
    given = ends or {}
    first: dict[int, int] = {}
    captured: dict[int, int] = {}
    for p, start in starts.items():
        if p in given and start >= 0:
            first[p], captured[p] = start, given[p]
            continue
        low, high = watermarks(consumer, topic, p, limit)
        if start == OFFSET_END:
            start = high
        elif start == OFFSET_BEGINNING or 0 <= start < low:
            start = low
        first[p], captured[p] = start, given.get(p, high)
    read = ReadEnds.of(first, captured)
    if read.done:
        return
    consumer.assign([TopicPartition(topic, p, read.positions[p]) for p in read.open])
    last_progress = time.monotonic()
    try:
        while not read.done:
            now = time.monotonic()
            if timeout is not None and now - started > timeout:
                raise ReadError(f"reading {topic} did not reach its end within {timeout:.0f} s{_at(read)}")
            if stall is not None and now - last_progress > stall:
                raise ReadError(f"reading {topic} stalled: nothing for {stall:.0f} s{_at(read)}; is the broker up?")
            # What is queued now, else wait for one message (consume waits for a full batch).
            batch = consumer.consume(BATCH, 0) or consumer.consume(1, POLL_S)
            if not batch:
                for tp in consumer.position([TopicPartition(topic, p) for p in read.open]):
                    if read.advance(tp.partition, tp.offset):
                        last_progress = time.monotonic()
                continue
            for msg in batch:
                partition, offset = msg.partition(), msg.offset()
                error = msg.error()
                if error is None or error.code() == RdKafkaError._PARTITION_EOF:
                    last_progress = time.monotonic()
                if error is not None:
                    if error.code() == RdKafkaError._PARTITION_EOF and partition is not None:
                        read.reached_eof(partition)
                    elif error.fatal() or not (error.retriable() or error.code() in TRANSIENT):
                        raise ReadError(f"reading {topic}[{partition}]: {error}")
                    continue  # librdkafka retries by itself; the stall and timeout limits still hold
                if partition is not None and offset is not None and read.take(partition, offset):
                    yield msg
    finally:
        consumer.unassign()


def read_backwards(
    consumer: Consumer,
    topic: str,
    partition: int,
    enough: Callable[[], bool],
    *,
    bounds: tuple[int, int] | None = None,
    first_window: int = FIRST_WINDOW,
    timeout: float | None = None,
    stall: float | None = STALL_S,
) -> Iterator[Message]:
    """The messages of one partition, newest window first (see `tail_windows`; each window in
    offset order), until `enough()` is true after a window or the low watermark is reached.
    `bounds` is the (low, high) to read within, by default the partition's watermarks now;
    `timeout` limits each window."""
    low, high = bounds if bounds is not None else watermarks(consumer, topic, partition)
    for start, end in tail_windows(low, high, first_window):
        yield from read_to_end(consumer, topic, {partition: start}, {partition: end}, timeout=timeout, stall=stall)
        if enough():
            return


def _at(read: ReadEnds) -> str:
    return "".join(f"; partition {p} at offset {read.positions[p]} of {read.ends[p]}" for p in read.open)


def produce(
    producer: Producer,
    topic: str,
    value: bytes | None,
    *,
    key: bytes | None = None,
    partition: int | None = None,
    on_delivery: Callable[[Any, Any], None] | None = None,
    timestamp: int | None = None,
    block_s: float = PRODUCE_BLOCK_S,
) -> None:
    """Queue one message; while the queue is full, serve delivery reports and retry, for up to
    `block_s` seconds, then raise ProduceError naming the topic."""
    kwargs: dict[str, Any] = {"key": key, "value": value}
    if partition is not None:
        kwargs["partition"] = partition
    if on_delivery is not None:
        kwargs["on_delivery"] = on_delivery
    if timestamp is not None:
        kwargs["timestamp"] = timestamp
    deadline = time.monotonic() + block_s
    while True:
        try:
            producer.produce(topic, **kwargs)
            return
        except BufferError as exc:
            if time.monotonic() > deadline:
                raise ProduceError(
                    f"the producer's queue for {topic} stayed full for {block_s:.0f} s: the cluster does not "
                    "take messages; check the broker (`tidemark kafka status`) and the network"
                ) from exc
            producer.poll(PRODUCE_POLL_S)
