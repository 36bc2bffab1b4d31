"""A failover against the real broker: `bump_generation` fences the old primary in the journal.

The processor runs as a `tidemark process` subprocess. The old primary keeps writing after the
failover; its writes become dead letters and never reach a change set, while the new primary's
writes (next generation, seqs restarting) fold as usual.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import xxhash

from tidemark.core.partitioning import volume_partition
from tidemark.core.volumes import VolumeSpec, bump_generation, lookup_volume, publish_volume
from tidemark.schemas.codec import default_codec

from .test_processor_kafka import SIZE, _changesets_by_id, _mirror, pipelines  # noqa: F401

pytestmark = pytest.mark.integration

VOLUME = "vol-fence"
BLOCK = 4096


def _write(seq: int, block: int, fill: int, epoch: int, generation: int) -> bytes:
    data = bytes([fill]) * BLOCK
    record = {
        "volume": VOLUME, "epoch": epoch, "seq": seq, "timestamp": time.time_ns() // 1000, "offset": block * BLOCK,
        "length": BLOCK, "op": "WRITE", "compression": "NONE", "data": data,
        "checksum": xxhash.xxh3_64_digest(data), "generation": generation,
    }  # fmt: skip
    return default_codec().encode("BlockWrite", record)


def _final_marker() -> bytes:
    record = {
        "volume": VOLUME, "marker_id": str(uuid.uuid4()), "kind": "REQUESTED", "timestamp": time.time_ns() // 1000,
        "epoch": None, "after_seq": None, "label": "final", "group": None, "barrier_id": None, "generation": 0,
    }  # fmt: skip
    return default_codec().encode("Marker", record)


def test_after_a_failover_the_old_primary_is_fenced_and_the_new_one_folds(pipelines: Any) -> None:  # noqa: F811
    pipeline = pipelines()
    publish_volume(pipeline.clients, pipeline.topics, VolumeSpec(VOLUME, SIZE))
    partition = volume_partition(VOLUME, pipeline.settings.partitions)
    producer = pipeline.clients.producer()

    def send(values: list[bytes]) -> None:
        for value in values:
            producer.produce(pipeline.topics.writes, key=VOLUME.encode(), value=value, partition=partition)
        assert producer.flush(30) == 0

    send([_write(seq, seq, 1 + seq, epoch=1, generation=0) for seq in range(10)])
    pipeline.start_processor()
    promoted = bump_generation(pipeline.clients, pipeline.topics, VOLUME, "dr")
    assert promoted.generation == 1 and lookup_volume(pipeline.clients, pipeline.topics, VOLUME) == promoted
    send([_write(seq, 40 + seq, 200, epoch=1, generation=0) for seq in range(10, 15)])  # the old primary goes on
    send([_write(5 + n, 20 + n, 100 + n, epoch=1, generation=1) for n in range(5)])  # the new one forked at seq 4
    send([_final_marker()])

    def final_point() -> bool:
        events = pipeline.read(pipeline.topics.recovery_points)
        return any(t == "RecoveryPoint" and r["label"] == "final" for t, r in events)

    pipeline.wait_for(final_point, "the final recovery point")
    letters = [r for t, r in pipeline.read(pipeline.topics.dead_letters) if t == "DeadLetter"]
    assert len(letters) == 5, [r["reason"] for r in letters]
    assert all("generation 0 is older than the volume's generation 1" in r["reason"] for r in letters)
    assert sorted(r["reason"].split(" seq ")[1].split(" ")[0] for r in letters) == [str(s) for s in range(10, 15)]

    changesets = _changesets_by_id(pipeline.read(pipeline.topics.changesets))
    expected = bytearray(SIZE)
    for seq in range(10):
        expected[seq * BLOCK : (seq + 1) * BLOCK] = bytes([1 + seq]) * BLOCK
    for n in range(5):
        expected[(20 + n) * BLOCK : (21 + n) * BLOCK] = bytes([100 + n]) * BLOCK
    assert _mirror(changesets) == expected, "no block of the fenced generation reached a change set"
    resyncs = [r for t, r in pipeline.read(pipeline.topics.changesets) if t == "ResyncRequest"]
    assert resyncs == [], "the new generation's seqs restart: no gap"
