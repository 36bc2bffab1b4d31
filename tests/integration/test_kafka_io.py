"""The shared Kafka I/O (tidemark.core.kafka_io) against a real broker, on uuid-named topics."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer

from tidemark.core import kafka_io
from tidemark.core.exceptions import TopicMissingError

from ..conftest import TidemarkTest

pytestmark = pytest.mark.integration


def _fill(tm: TidemarkTest, topic: str, per_partition: int) -> None:
    producer = tm.clients.producer()
    for partition in kafka_io.topic_partitions(producer, topic):
        for n in range(per_partition):
            kafka_io.produce(producer, topic, f"{partition}:{n}".encode(), key=b"k", partition=partition)
    assert producer.flush(30) == 0


def test_partitions_of_a_topic_and_the_error_for_a_missing_one(tm: TidemarkTest) -> None:
    consumer = kafka_io.reader(tm.clients, "test")
    try:
        assert kafka_io.topic_partitions(consumer, tm.topics.writes, 10) == list(range(tm.settings.partitions))
        missing = f"{tm.topics.writes}-missing"
        with pytest.raises(TopicMissingError, match=f"topic {missing} does not exist: run `tidemark topics create`"):
            kafka_io.topic_partitions(consumer, missing, 10)
    finally:
        consumer.close()


def test_a_read_ends_at_the_offsets_present_when_it_starts_while_writes_go_on(tm: TidemarkTest) -> None:
    topic = tm.topics.metrics
    _fill(tm, topic, 50)
    stop = threading.Event()

    def keep_writing() -> None:
        producer = tm.clients.producer(**{"linger.ms": 0})
        while not stop.is_set():
            kafka_io.produce(producer, topic, b"later", key=b"k", partition=0)
            producer.flush(1)
        producer.flush(10)

    writer = threading.Thread(target=keep_writing)
    messages = kafka_io.read_topic(tm.clients, topic, timeout=60)
    first = next(messages)
    writer.start()
    try:
        time.sleep(1)
        read = [first, *messages]
    finally:
        stop.set()
        writer.join()
    values = [m.value() or b"" for m in read]
    assert b"later" not in values
    assert sorted(values) == sorted(f"{p}:{n}".encode() for p in range(tm.settings.partitions) for n in range(50))
    for partition in range(tm.settings.partitions):  # each partition in offset order
        offsets = [m.offset() or 0 for m in read if m.partition() == partition]
        assert offsets == sorted(offsets)


def test_a_transactional_topic_is_read_past_its_commit_marker_and_not_into_an_open_transaction(
    tm: TidemarkTest,
) -> None:
    topic = tm.topics.changesets
    producer = tm.clients.producer(**{"transactional.id": f"{tm.prefix}-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(5):
        producer.produce(topic, value=f"committed {n}".encode(), partition=0)
    producer.commit_transaction(30)  # the commit marker takes offset 5, the partition's last
    open_txn = tm.clients.producer(**{"transactional.id": f"{tm.prefix}-{uuid.uuid4().hex}"})
    open_txn.init_transactions(30)
    open_txn.begin_transaction()
    open_txn.produce(topic, value=b"uncommitted", partition=0)
    open_txn.flush(30)
    try:
        for eof in (True, False):  # with end-of-file events and without (a caller's own consumer)
            consumer = tm.clients.consumer(tm.group(), **{"enable.partition.eof": eof})
            try:
                started = time.monotonic()
                values = [m.value() for m in kafka_io.read_to_end(consumer, topic, {0: OFFSET_BEGINNING}, stall=20)]
                assert time.monotonic() - started < 10
            finally:
                consumer.close()
            assert values == [f"committed {n}".encode() for n in range(5)]
    finally:
        open_txn.abort_transaction(30)


def test_empty_partitions_read_from_the_beginning_end_at_once_without_end_of_file_events(tm: TidemarkTest) -> None:
    """A registry topic made with more partitions than tidemark makes (auto-created by the broker,
    say) has empty ones; the tracker's registry watch reads them with OFFSET_BEGINNING on a
    consumer without end-of-file events, and waited out its whole timeout on each."""
    topic = tm.topics.writes
    producer = tm.clients.producer()
    kafka_io.produce(producer, topic, b"only", key=b"k", partition=1)
    assert producer.flush(30) == 0
    consumer = tm.clients.consumer(tm.group(), **{"enable.partition.eof": False})
    try:
        parts = kafka_io.topic_partitions(consumer, topic)
        assert len(parts) > 2, "the test needs partitions left empty"
        ends = {p: kafka_io.watermarks(consumer, topic, p)[1] for p in parts}
        started = time.monotonic()
        for given in (ends, None):
            starts = dict.fromkeys(parts, OFFSET_BEGINNING)
            values = [m.value() for m in kafka_io.read_to_end(consumer, topic, starts, given, timeout=20, stall=None)]
            assert values == [b"only"]
        assert time.monotonic() - started < 10
    finally:
        consumer.close()


def test_given_ends_bound_the_read_and_a_backwards_read_stops_at_the_newest_window_that_satisfies(
    tm: TidemarkTest,
) -> None:
    topic = tm.topics.dead_letters
    producer = tm.clients.producer()
    for n in range(1000):
        key = b"wanted" if n in (100, 900) else b"other"
        kafka_io.produce(producer, topic, str(n).encode(), key=key, partition=0)
    assert producer.flush(30) == 0
    consumer = kafka_io.reader(tm.clients, "test")
    try:
        ranged = [int(m.value() or b"") for m in kafka_io.read_to_end(consumer, topic, {0: 10}, {0: 20})]
        assert ranged == list(range(10, 20))
        seen: list[int] = []
        found: list[int] = []
        for msg in kafka_io.read_backwards(consumer, topic, 0, lambda: bool(found), first_window=50):
            seen.append(msg.offset() or 0)
            if msg.key() == b"wanted":
                found.append(int(msg.value() or b""))
        assert found == [900]
        assert seen == [*range(950, 1000), *range(750, 950)], "windows of 50 then 200 offsets, newest first"
        whole = [msg.offset() or 0 for msg in kafka_io.read_backwards(consumer, topic, 0, lambda: False)]
        assert sorted(whole) == list(range(1000)), "an unsatisfied read goes down to the start"
    finally:
        consumer.close()


def test_produce_waits_for_room_in_a_full_queue(tm: TidemarkTest) -> None:
    producer = tm.clients.producer(**{"queue.buffering.max.messages": 10})
    for n in range(500):
        kafka_io.produce(producer, tm.topics.metrics, str(n).encode(), partition=0)
    assert producer.flush(30) == 0
    assert len(list(kafka_io.read_topic(tm.clients, tm.topics.metrics, [0], timeout=30))) == 500


def test_produce_gives_up_on_a_queue_that_stays_full() -> None:
    # nothing listens on port 9 (discard): the one queued message is never delivered
    producer = Producer({"bootstrap.servers": "127.0.0.1:9", "queue.buffering.max.messages": 1})
    kafka_io.produce(producer, "nowhere", b"first")
    started = time.monotonic()
    with pytest.raises(kafka_io.ProduceError, match="queue for nowhere stayed full for 1 s"):
        kafka_io.produce(producer, "nowhere", b"second", block_s=1)
    assert 1 <= time.monotonic() - started < 5
    producer.purge()


def test_a_read_that_cannot_reach_its_end_stops_with_an_error_naming_the_place(tm: TidemarkTest) -> None:
    topic = tm.topics.metrics
    producer = tm.clients.producer()
    for n in range(10):
        kafka_io.produce(producer, topic, str(n).encode(), partition=0)
    assert producer.flush(30) == 0
    consumer = tm.clients.consumer(tm.group())  # no end-of-file events: only the end it was given
    try:
        read: list[int] = []
        stalled = rf"reading {topic} stalled: nothing for 2 s; partition 0 at offset 10 of 100"
        with pytest.raises(kafka_io.ReadError, match=stalled):
            read.extend(m.offset() or 0 for m in kafka_io.read_to_end(consumer, topic, {0: 0}, {0: 100}, stall=2))
        assert read == list(range(10))
        with pytest.raises(kafka_io.ReadError, match=rf"reading {topic} did not reach its end within 3 s"):
            list(kafka_io.read_to_end(consumer, topic, {0: 0}, {0: 100}, timeout=3, stall=None))
    finally:
        consumer.close()
