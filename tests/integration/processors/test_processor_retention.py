"""Retention passes a stopped processor: on restart it requests resyncs instead of skipping silently.

`AdminClient.delete_records` plays retention on the real broker: writes published while the
processor is stopped are deleted before it comes back.
"""

from __future__ import annotations

import signal
import time
import uuid
from typing import Any

import pytest
import xxhash
from confluent_kafka import OFFSET_END, TopicPartition

from tidemark.core.partitioning import volume_partition
from tidemark.core.volumes import VolumeSpec, publish_volume
from tidemark.schemas.codec import default_codec

from .test_processor_kafka import SIZE, pipelines  # noqa: F401

pytestmark = pytest.mark.integration

VOLUME = "vol-trim"
BLOCK = 4096


def _write(seq: int) -> bytes:
    data = bytes([seq % 251 + 1]) * BLOCK
    record = {
        "volume": VOLUME, "epoch": 1, "seq": seq, "timestamp": time.time_ns() // 1000, "offset": (seq % 64) * BLOCK,
        "length": BLOCK, "op": "WRITE", "compression": "NONE", "data": data, "checksum": xxhash.xxh3_64_digest(data),
    }  # fmt: skip
    return default_codec().encode("BlockWrite", record)


def _marker(label: str) -> bytes:
    record = {
        "volume": VOLUME, "marker_id": str(uuid.uuid4()), "kind": "REQUESTED", "timestamp": time.time_ns() // 1000,
        "epoch": None, "after_seq": None, "label": label, "group": None, "barrier_id": None,
    }  # fmt: skip
    return default_codec().encode("Marker", record)


def test_writes_deleted_under_a_stopped_processor_raise_a_resync_request(pipelines: Any) -> None:  # noqa: F811
    pipeline = pipelines()
    publish_volume(pipeline.clients, pipeline.topics, VolumeSpec(VOLUME, SIZE))
    tp = TopicPartition(pipeline.topics.writes, volume_partition(VOLUME, pipeline.settings.partitions))
    producer = pipeline.clients.producer()

    def send(values: list[bytes]) -> None:
        for value in values:
            producer.produce(tp.topic, key=VOLUME.encode(), value=value, partition=tp.partition)
        assert producer.flush(30) == 0

    def point(label: str) -> bool:
        return any(r.get("label") == label for _, r in pipeline.read(pipeline.topics.recovery_points))

    send([_write(seq) for seq in range(100)] + [_marker("before")])
    pipeline.start_processor()
    pipeline.wait_for(lambda: point("before"), "the first recovery point")
    pipeline.kill_processor(signal.SIGTERM)

    send([_write(seq) for seq in range(100, 200)])  # never folded: retention deletes them
    admin = pipeline.clients.admin()
    for future in admin.delete_records([TopicPartition(tp.topic, tp.partition, OFFSET_END)]).values():
        future.result(timeout=30)
    send([_write(seq) for seq in range(200, 250)] + [_marker("after")])
    pipeline.start_processor()
    pipeline.wait_for(lambda: point("after"), "the recovery point after the restart")

    resyncs = [r for t, r in pipeline.read(pipeline.topics.changesets) if t == "ResyncRequest"]
    assert len(resyncs) == 1, resyncs
    assert resyncs[0]["volume"] == VOLUME and "retention deleted" in resyncs[0]["reason"]
    assert "after seq 99" in resyncs[0]["reason"]
    assert "resync requested for vol-trim" in (pipeline.state / "processor.log").read_text()
