"""Figure 1: tracker-core ingest (MB/s) vs Kafka's ProducerPerformance, 4 KiB and 64 KiB writes.

Both publish to a single partition (one volume = one partition of the writes topic) of the same
broker with acks=all, the idempotent producer and no compression. The anchor's record size is the
encoded BlockWrite of one write, so both put the same bytes on the wire; the tracker's figure
counts only the payload bytes, the anchor's counts whole records (the tracker is not flattered).
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

import xxhash
from confluent_kafka.admin import NewTopic

from tidemark.producers.events import now_micros
from tidemark.producers.tracker import Tracker, TrackerOptions
from tidemark.schemas.codec import default_codec
from tidemark.schemas.records import block_write

from .env import MIB, BenchEnv, Stage
from .kafka_perf import PerfResult, producer_performance, tools_lib
from .results import Figure, ratio_at_least

IN_FLIGHT_BYTES = 32 * MIB  # like the Java producer's default buffer.memory
# The tracker's librdkafka producer batches up to 1,000,000 bytes and lingers 2 ms
# (`KafkaClients.producer`); the Java producer gets the same, not its 16 KiB / 0 ms defaults.
ANCHOR_PROPS = {"linger.ms": "2", "batch.size": "1000000"}
VOLUME_BYTES = 1 << 30
# MiB written per write size, (quick, full): as many records as the anchor needs to be steady.
TOTAL_MIB = {4096: (128, 384), 65536: (256, 1024)}


@dataclass(frozen=True)
class IngestResult:
    write_bytes: int
    record_bytes: int
    tracker_mb_s: float
    anchor: PerfResult


def encoded_size(write_bytes: int) -> int:
    data = os.urandom(write_bytes)
    record = block_write(
        volume="v" * 12, epoch=1, seq=10**6, timestamp=now_micros(), offset=0, length=write_bytes, op="WRITE",
        compression="NONE", data=data, checksum=xxhash.xxh3_64_digest(data),
    )  # fmt: skip
    return len(default_codec().encode("BlockWrite", record))


def tracker_mb_s(stage: Stage, volume: str, write_bytes: int, total_bytes: int) -> float:
    """Submit `total_bytes` of writes (at most IN_FLIGHT_BYTES unconfirmed) and wait for all."""
    spec = stage.register(volume, VOLUME_BYTES)
    options = TrackerOptions(extent_bytes=stage.settings.extent_bytes)
    folder = stage.settings.volume_state_dir("trackers", volume)
    data = os.urandom(write_bytes)
    count = total_bytes // write_bytes
    window = max(1, IN_FLIGHT_BYTES // write_bytes)
    with Tracker(spec, stage.clients, stage.topics, folder, None, options).start() as tracker:
        tracker.submit_write(0, data).result(30)  # connection warm
        pending: deque[Future[None]] = deque()
        started = time.perf_counter()
        for i in range(count):
            pending.append(tracker.submit_write((i * write_bytes) % VOLUME_BYTES, data))
            if len(pending) > window:
                pending.popleft().result(60)
        for future in pending:
            future.result(60)
        elapsed = time.perf_counter() - started
    return count * write_bytes / elapsed / 1e6


def anchor_topic(stage: Stage, name: str) -> str:
    topic = f"{stage.settings.topic_prefix}.anchor-{name}"
    admin = stage.clients.admin()
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(30)
    time.sleep(1.0)  # leader elected
    return topic


def measure(env: BenchEnv, stage: Stage, quick: bool) -> list[IngestResult]:
    lib = tools_lib(env.kafka_cache, env.kafka_version)
    results = []
    repeats = 1 if quick else 2  # best of each, interleaved: the machine is shared
    for write_bytes in TOTAL_MIB:
        total = total_bytes(write_bytes, quick)
        record = encoded_size(write_bytes)
        label = f"{write_bytes // 1024}k"
        topic = anchor_topic(stage, label)
        anchors, ours = [], []
        for attempt in range(repeats):
            anchors.append(
                producer_performance(lib, stage.clients.bootstrap, topic, total // write_bytes, record, ANCHOR_PROPS)
            )
            ours.append(tracker_mb_s(stage, f"ingest{label}-{attempt}", write_bytes, total))
        best = max(anchors, key=lambda a: a.mb_per_s)
        results.append(IngestResult(write_bytes, record, max(ours), best))
    return results


def figures(results: list[IngestResult]) -> list[Figure]:
    return [
        Figure(
            "1",
            f"ingest, tracker core, {r.write_bytes // 1024} KiB writes",
            r.tracker_mb_s,
            "MB/s",
            f"ProducerPerformance, {r.record_bytes} B records",
            r.anchor.mb_per_s,
            ratio_at_least(0.8),
            [
                f"anchor: {r.anchor.records} records, avg latency {r.anchor.avg_latency_ms:.0f} ms, "
                "linger.ms=2 batch.size=1000000 like the tracker's producer; one partition each"
            ],
        )  # fmt: skip
        for r in results
    ]


def total_bytes(write_bytes: int, quick: bool) -> int:
    return TOTAL_MIB[write_bytes][0 if quick else 1] * MIB


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    with env.stage("ingest") as stage:
        results = measure(env, stage, quick)
    for result in results:
        env.anchors[_anchor_key(result.write_bytes)] = result.anchor.mb_per_s
    return figures(results)


def _anchor_key(write_bytes: int) -> str:
    return f"kafka_{write_bytes // 1024}k_mb_s"


def kafka_mb_s(env: BenchEnv, stage: Stage, write_bytes: int, quick: bool) -> float:
    """Figure 1's ProducerPerformance anchor for `write_bytes` writes (one record per write), measured
    now if figure 1 did not run in this invocation."""
    key = _anchor_key(write_bytes)
    if key not in env.anchors:
        lib = tools_lib(env.kafka_cache, env.kafka_version)
        records = total_bytes(write_bytes, quick) // write_bytes
        topic = anchor_topic(stage, f"{write_bytes // 1024}k")
        result = producer_performance(
            lib, stage.clients.bootstrap, topic, records, encoded_size(write_bytes), ANCHOR_PROPS
        )
        env.anchors[key] = result.mb_per_s
    return env.anchors[key]
