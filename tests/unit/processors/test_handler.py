"""The handler over a journal held in a list: record cache, restart by re-folding, read-back, size guard.

No broker: the journal is a list of encoded messages (offset = index) and the state store is the
real RocksDB PartitionStore; "the changelog" is what `take_pending` hands over per transaction.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import xxhash

from tidemark.core.topics import Topics
from tidemark.core.volumes import VolumeSpec
from tidemark.processors.fold_volume import FoldOptions
from tidemark.processors.handler import Handler
from tidemark.processors.kafka_emitter import KafkaEmitter
from tidemark.processors.recent_writes import RecentWrites
from tidemark.processors.state_store import PartitionStore
from tidemark.processors.ticker import TICK_KEY
from tidemark.schemas import records
from tidemark.schemas.codec import default_codec

TOPICS = Topics("t")
BLOCK = 4096
Message = tuple[bytes, bytes, float]  # key, value, timestamp (s)


class ListJournal:
    """The writes partition as a list; reads count what a seal had to fetch back."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.read_back = 0

    def read(self, partition: int, offsets: Sequence[int]) -> Iterator[tuple[int, bytes | None, bytes | None]]:
        for offset in offsets:
            self.read_back += 1
            key, value, _ = self.messages[offset]
            yield offset, key, value

    def scan(self, start: int, end: int) -> Iterator[tuple[int, bytes | None, bytes | None]]:
        for offset in range(start, end):
            key, value, _ = self.messages[offset]
            yield offset, key, value


class Run:
    """One worker: a handler, its store, and what it produced (outputs, changelog)."""

    def __init__(
        self,
        root: Path,
        journal: ListJournal,
        volumes: dict[str, VolumeSpec],
        options: FoldOptions,
        cache: int,
        changelog: dict[bytes, bytes | None] | None = None,
    ) -> None:
        self.outputs: list[tuple[str, bytes | None, bytes]] = []
        self.changelog_bytes = 0
        self.store = PartitionStore(root)
        for key, value in (changelog or {}).items():
            self.store.restore(key, value)
        emitter = KafkaEmitter(TOPICS, lambda topic, key, value: self.outputs.append((topic, key, value)), 4 << 20)
        self.handler = Handler(emitter, volumes, options, RecentWrites(cache), journal)
        self.handler.assign(0, self.store)
        self.journal = journal

    def handle(self, start: int, end: int, batch: int, changelog: dict[bytes, bytes | None]) -> None:
        for first in range(start, end, batch):
            for offset in range(first, min(end, first + batch)):
                key, value, ts = self.journal.messages[offset]
                self.handler.handle(0, offset, key, value, ts)
            self.handler.flush(0)
            for stored_key, stored in self.store.take_pending():
                changelog[stored_key] = stored
                self.changelog_bytes += len(stored_key) + len(stored or b"")

    def events(self, topic: str) -> list[bytes]:
        return [value for t, _, value in self.outputs if t == topic]


def _write(volume: str, seq: int, block: int, data: bytes, ts: float) -> Message:
    record = records.block_write(
        volume=volume, epoch=1, seq=seq, timestamp=int(ts * 1e6), offset=block * BLOCK, length=len(data), op="WRITE",
        compression="NONE", data=data, checksum=xxhash.xxh3_64_digest(data),
    )  # fmt: skip
    return volume.encode(), default_codec().encode("BlockWrite", record), ts


def _marker(volume: str, ts: float) -> Message:
    record = records.marker(volume=volume, marker_id=f"m{ts}", kind="REQUESTED", timestamp=int(ts * 1e6), epoch=1)
    return volume.encode(), default_codec().encode("Marker", record), ts


def _journal(volumes: Sequence[str], writes: int, blocks: int, seed: int = 3) -> list[Message]:
    """Writes of several volumes interleaved, ticks every 20 messages, a marker every 300 writes."""
    rng = random.Random(seed)
    messages: list[Message] = []
    seqs = dict.fromkeys(volumes, 0)
    for n in range(writes):
        ts = 1000.0 + n * 0.01
        volume = rng.choice(volumes)
        count = rng.choice((1, 1, 2, 8))
        messages.append(_write(volume, seqs[volume], rng.randrange(blocks - count), rng.randbytes(count * BLOCK), ts))
        seqs[volume] += 1
        if n % 20 == 19:
            messages.append((TICK_KEY, b"", ts))
        if n % 300 == 299:
            messages.append(_marker(volume, ts))
    messages.append((TICK_KEY, b"", 1000.0 + writes * 0.01 + 5))
    return messages


def test_a_restart_refolds_the_journal_and_emits_exactly_what_an_uninterrupted_run_emits(tmp_path: Path) -> None:
    names = ("a", "b")
    volumes = {n: VolumeSpec(n, 256 * BLOCK) for n in names}
    options = FoldOptions(subinterval=0.5, rp_interval=2.0, metrics_interval=3600, subinterval_max_bytes=40 * BLOCK)
    journal = ListJournal(_journal(names, 2000, 256))
    end = len(journal.messages)
    reference = Run(tmp_path / "ref", journal, volumes, options, cache=128 << 20)
    reference.handle(0, end, 50, {})

    crash_at = 50 * (end // 100)  # a transaction boundary in the middle
    changelog: dict[bytes, bytes | None] = {}
    first = Run(tmp_path / "first", journal, volumes, options, cache=128 << 20)
    first.handle(0, crash_at, 50, changelog)
    restarted = Run(tmp_path / "second", journal, volumes, options, cache=0, changelog=changelog)  # reads back
    start = restarted.handler.refold_start(0)
    assert start is not None and start < crash_at, "the crash left a sub-interval open"
    assert restarted.handler.refold(0, journal.scan(start, crash_at)) > 0
    restarted.handle(crash_at, end, 50, changelog)

    for topic in (TOPICS.changesets, TOPICS.recovery_points):
        assert first.events(topic) + restarted.events(topic) == reference.events(topic)
    assert journal.read_back > 0 and restarted.handler.stats["read_back"] == journal.read_back
    assert len(reference.events(TOPICS.recovery_points)) > 10


def test_changelog_bytes_stay_under_5_percent_of_random_4k_writes_in_one_subinterval(tmp_path: Path) -> None:
    """16k random 4 KiB writes in one sub-interval (the issue's figure), 500 messages per transaction."""
    rng = random.Random(1)
    volumes = {"r": VolumeSpec("r", 1 << 30)}
    blocks = (1 << 30) // BLOCK
    messages = [_write("r", seq, rng.randrange(blocks), rng.randbytes(BLOCK), 1000.0) for seq in range(16_384)]
    messages.append((TICK_KEY, b"", 1002.0))
    run = Run(tmp_path / "s", ListJournal(messages), volumes, FoldOptions(), cache=128 << 20)
    run.handle(0, len(messages), 500, {})
    written = 16_384 * BLOCK
    assert run.changelog_bytes <= 0.05 * written, run.changelog_bytes / written
    assert len(run.events(TOPICS.changesets)) > 16_000 / 64, "the data went out as change sets"


def test_an_event_over_the_message_size_becomes_a_bounded_dead_letter_and_the_partition_flows(tmp_path: Path) -> None:
    volumes = {"v": VolumeSpec("v", 1024 * BLOCK)}
    messages = [_write("v", seq, seq * 64, random.Random(seq).randbytes(64 * BLOCK), 1000.0) for seq in range(4)]
    messages += [(TICK_KEY, b"", 1002.0), _write("v", 4, 900, b"\x01" * BLOCK, 1003.0), (TICK_KEY, b"", 1005.0)]
    outputs: list[tuple[str, bytes | None, bytes]] = []
    emitter = KafkaEmitter(TOPICS, lambda t, k, v: outputs.append((t, k, v)), 200 << 10)
    handler = Handler(emitter, volumes, FoldOptions(extent_bytes=256 << 10), RecentWrites(), ListJournal(messages))
    handler.assign(0, PartitionStore(tmp_path / "s"))
    for offset, (key, value, ts) in enumerate(messages):
        handler.handle(0, offset, key, value, ts)
    codec = default_codec()
    letters = [codec.decode(v)[1] for t, _, v in outputs if t == TOPICS.dead_letters]
    assert len(letters) == 4, "each 256 KiB extent is over a 200 KiB limit"
    assert all("over message_max_bytes" in d["reason"] and d["value_length"] > len(d["value"]) for d in letters)
    assert all(d["volume"] == "v" and d["topic"] == TOPICS.writes for d in letters)
    extents = [codec.decode(v)[1] for t, _, v in outputs if t == TOPICS.changesets]
    assert any(r.get("length") == BLOCK for r in extents), "the next change set went out"


def test_a_record_type_that_does_not_belong_on_the_writes_topic_is_dead_lettered_and_the_partition_flows(
    tmp_path: Path,
) -> None:
    volumes = {"v": VolumeSpec("v", 64 * BLOCK)}
    stray = records.extent(
        volume="v", changeset_id=1, index=0, offset=0, length=BLOCK, op="WRITE", compression="NONE",
        data=b"\x07" * BLOCK, checksum=xxhash.xxh3_64_digest(b"\x07" * BLOCK),
    )  # fmt: skip
    messages = [(b"v", default_codec().encode("Extent", stray), 1000.0), _write("v", 0, 3, b"\x01" * BLOCK, 1000.1)]
    messages.append((TICK_KEY, b"", 1002.0))
    outputs: list[tuple[str, bytes | None, bytes]] = []
    emitter = KafkaEmitter(TOPICS, lambda t, k, v: outputs.append((t, k, v)), 4 << 20)
    handler = Handler(emitter, volumes, FoldOptions(), RecentWrites(), ListJournal(messages))
    handler.assign(0, PartitionStore(tmp_path / "s"))
    for offset, (key, value, ts) in enumerate(messages):
        handler.handle(0, offset, key, value, ts)
    codec = default_codec()
    (letter,) = [codec.decode(v)[1] for t, _, v in outputs if t == TOPICS.dead_letters]
    assert "record type Extent does not belong on the writes topic" in letter["reason"]
    assert letter["offset"] == 0 and letter["volume"] == "v"
    extents = [codec.decode(v)[1] for t, _, v in outputs if t == TOPICS.changesets]
    assert [(r["offset"], r["data"]) for r in extents if "data" in r] == [(3 * BLOCK, b"\x01" * BLOCK)]
