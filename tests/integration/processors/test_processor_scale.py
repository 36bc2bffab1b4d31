"""The processor at disk scale against the real broker: a point of 700,000 blocks, read-back, restart."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import xxhash
from pyroaring import BitMap

from tidemark.core.volumes import VolumeSpec, publish_volume
from tidemark.processors.exceptions import ProcessorError
from tidemark.processors.fold_volume import FoldOptions
from tidemark.processors.journal_reader import JournalReader
from tidemark.processors.runner import ProcessorOptions, ProcessorWorker
from tidemark.schemas.codec import default_codec
from tidemark.schemas.exceptions import DecodeError

from .journal import Journal, build_journal, publish
from .test_processor_kafka import (  # noqa: F401
    SIZE,
    Pipeline,
    _changesets_by_id,
    _final_rps,
    _manifests,
    _mirror,
    _prepare,
    pipelines,
)

pytestmark = pytest.mark.integration

SMALL_BLOCK = 512
BIG_POINT_BLOCKS = 700_000
ZERO_RUN = 50_000


def _big_point_journal(volume: str) -> tuple[Journal, dict[int, bytes]]:
    """ZERO runs over 700,000 blocks of 512 bytes, data over every 997th block, then a marker."""
    codec = default_codec()
    journal = Journal(volume, 0)
    now_ms = int(time.time() * 1000)
    data: dict[int, bytes] = {}
    seq = 0

    def write(block: int, count: int, op: str, payload: bytes) -> None:
        nonlocal seq
        record = {
            "volume": volume, "epoch": 1, "seq": seq, "timestamp": now_ms * 1000, "offset": block * SMALL_BLOCK,
            "length": count * SMALL_BLOCK, "op": op, "compression": "NONE", "data": payload,
            "checksum": xxhash.xxh3_64_digest(payload),
        }  # fmt: skip
        journal.messages.append((volume.encode(), codec.encode("BlockWrite", record), now_ms))
        seq += 1

    for first in range(0, BIG_POINT_BLOCKS, ZERO_RUN):
        write(first, ZERO_RUN, "ZERO", b"")
    for n, block in enumerate(range(3, BIG_POINT_BLOCKS, 997)):
        data[block] = bytes([n % 255 + 1]) * SMALL_BLOCK
        write(block, 1, "WRITE", data[block])
    marker = {
        "volume": volume, "marker_id": str(uuid.uuid4()), "kind": "REQUESTED", "timestamp": now_ms * 1000,
        "epoch": 1, "after_seq": None, "label": "big", "group": None, "barrier_id": None,
    }  # fmt: skip
    journal.messages.append((volume.encode(), codec.encode("Marker", marker), now_ms))
    return journal, data


def test_a_point_of_700k_blocks_is_cut_into_chunks_and_read_back_whole(pipelines: Any) -> None:  # noqa: F811
    pipeline = pipelines()
    volume = "vol-big"
    publish_volume(
        pipeline.clients, pipeline.topics, VolumeSpec(volume, (BIG_POINT_BLOCKS + 1024) * SMALL_BLOCK, SMALL_BLOCK)
    )
    journal, data = _big_point_journal(volume)
    publish(pipeline.clients.producer(), pipeline.topics.writes, pipeline.settings.partitions, journal)
    pipeline.start_processor()

    def manifests() -> dict[int, Any]:
        return _manifests(pipeline.read(pipeline.topics.recovery_points))

    pipeline.wait_for(lambda: 1 in manifests(), "the 700,000-block point", timeout=120)
    header, chunks = manifests()[1]
    assert header["block_count"] == BIG_POINT_BLOCKS and header["chunk_count"] == len(chunks) == 11
    blocks: list[int] = []
    digests = b""
    for bitmap_raw, checksums in chunks:
        bitmap = BitMap.deserialize(bitmap_raw)
        assert len(bitmap) <= 65_536 and len(checksums) == 8 * len(bitmap)
        blocks.extend(bitmap)
        digests += checksums
    assert blocks == list(range(BIG_POINT_BLOCKS))
    zero = xxhash.xxh3_64_digest(bytes(SMALL_BLOCK))
    expected = b"".join(xxhash.xxh3_64_digest(data[b]) if b in data else zero for b in blocks)
    assert digests == expected


def _run_worker(pipeline: Pipeline, worker_id: str) -> tuple[ProcessorWorker, threading.Thread]:
    options = ProcessorOptions(
        fold=FoldOptions(rp_interval=3600), tick_interval=0, worker_id=worker_id, write_cache_bytes=0
    )
    worker = ProcessorWorker(pipeline.clients, options)
    thread = threading.Thread(target=worker.run, name=f"processor-{worker_id}", daemon=True)
    thread.start()
    return worker, thread


def test_without_a_cache_seals_read_back_from_the_journal_and_a_restart_refolds_it(pipelines: Any) -> None:  # noqa: F811
    """Every seal reads its writes back from Kafka; a restart in an open sub-interval re-folds it."""
    pipeline = pipelines()
    journal = build_journal("vol-rb", SIZE, writes=1200, marker_every=300)
    half = len(journal.messages) // 2
    while not _is_write(journal.messages[half - 1][1]):
        half += 1  # end the first part on a write: its sub-interval is open at the stop
    second = Journal(journal.volume, SIZE, messages=journal.messages[half:])
    journal.messages = journal.messages[:half]
    _prepare(pipeline, journal)
    worker, thread = _run_worker(pipeline, "rb")
    pipeline.wait_for(lambda: worker.handler.stats["events"] + worker.handler.stats["ticks"] >= half, "the first part")
    worker.stop_event.set()
    thread.join(60)
    first_stats = dict(worker.handler.stats)
    publish(pipeline.clients.producer(), pipeline.topics.writes, pipeline.settings.partitions, second)
    journal.messages += second.messages
    worker, thread = _run_worker(pipeline, "rb")
    try:
        pipeline.wait_for(lambda: _final_rps(pipeline, journal), "every recovery point")
    finally:
        worker.stop_event.set()
        thread.join(60)
    assert first_stats["read_back"] > 0 and worker.handler.stats["read_back"] > 0, "no cache: every seal reads back"
    assert worker.handler.stats["refolded"] > 0, "the restart re-folded the open sub-interval"
    changesets = _changesets_by_id(pipeline.read(pipeline.topics.changesets))
    assert sorted(changesets) == list(range(1, len(changesets) + 1))
    assert _mirror(changesets) == journal.image, "the change sets rebuild the volume"


def _is_write(value: bytes) -> bool:
    try:
        return default_codec().decode(value)[0] == "BlockWrite"
    except DecodeError:
        return False


def test_the_journal_reader_reads_sparse_offsets_in_order_and_scans_a_range(pipelines: Any) -> None:  # noqa: F811
    pipeline = pipelines()
    producer = pipeline.clients.producer()
    for n in range(5000):
        producer.produce(pipeline.topics.writes, key=b"k", value=b"%d" % n, partition=1)
        if n % 1000 == 999:
            producer.flush(30)
    assert producer.flush(30) == 0
    reader = JournalReader(pipeline.clients, pipeline.topics.writes)
    try:
        wanted = [3, 10, 2100, 4000, 4999]  # gaps past SEEK_GAP: the reader jumps ahead
        assert [(o, v) for o, _, v in reader.read(1, wanted)] == [(o, b"%d" % o) for o in wanted]
        assert [o for o, _, _ in reader.scan(1, 4990, 5000)] == list(range(4990, 5000))
        with pytest.raises(ProcessorError, match="ends at 5000"):
            list(reader.read(1, [4999, 5000]))
    finally:
        reader.close()
