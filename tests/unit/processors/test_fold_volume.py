"""The folding logic against a plain in-memory model (no Kafka): block refs, read-back, points."""

from __future__ import annotations

from typing import Any

import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.processors.admission import RECENT_SEQS
from tidemark.processors.extents import changeset_digest
from tidemark.processors.fold_volume import FoldOptions, VolumeFolder
from tidemark.processors.memory_journal import MemoryJournal
from tidemark.processors.volume_state import VolumeState

from .memory_emitter import MemoryEmitter

BLOCK = 512
BLOCKS = 64
SIZE = BLOCK * BLOCKS


class Harness:
    """A folder over a dict store and a dict journal; `write` journals then folds, like the handler."""

    def __init__(self, size: int = SIZE, **options: Any) -> None:
        self.store: dict[bytes, bytes] = {}
        self.emitter = MemoryEmitter()
        self.journal = MemoryJournal()
        fold = FoldOptions(**({"extent_bytes": 4 * BLOCK} | options))
        self.folder = VolumeFolder(self.store, self.emitter, fold, self.journal)
        self.state = VolumeState("v", BLOCK, size)
        self.seq = 0

    def write(self, block: int, count: int, op: str, fill: int, now: float) -> bytes:
        length = count * BLOCK
        data = bytes([fill]) * length if op == "WRITE" else b""
        record = {
            "volume": "v", "epoch": 1, "seq": self.seq, "timestamp": self.seq, "offset": block * BLOCK,
            "length": length, "op": op, "checksum": xxhash.xxh3_64_digest(data),
        }  # fmt: skip
        self.seq += 1
        self.folder.on_write(self.state, self.journal.append(record, data), record, now)
        return data

    def tick(self, now: float) -> None:
        self.journal.skip()
        self.folder.on_tick(self.state, now)

    def marker(self, kind: str, now: float, label: str | None = None) -> None:
        self.journal.skip()
        self.folder.on_marker(self.state, {"kind": kind, "label": label}, now)


def test_overwrites_within_a_subinterval_ship_each_block_once_with_the_last_content() -> None:
    h = Harness()
    for round_ in range(50):
        for block in range(BLOCKS):
            h.write(block, 1, "WRITE", round_, now=0.0)
    h.tick(now=1.5)
    shipped = sum(e["length"] for e in h.emitter.extents())
    assert shipped == BLOCKS * BLOCK
    mirror = bytearray(SIZE)
    h.emitter.apply_to(mirror)
    assert mirror == bytes([49]) * SIZE
    (seal,) = h.emitter.seals()
    assert seal["block_count"] == BLOCKS and seal["reason"] == "INTERVAL"
    assert seal["digest"] == changeset_digest(e["checksum"] for e in h.emitter.extents())
    assert h.journal.reads == BLOCKS, "only the newest write of each block is read back"
    assert all(e["length"] == 4 * BLOCK for e in h.emitter.extents()), "sequential runs coalesce"


def test_the_store_holds_no_block_data_and_state_json_does_not_grow_with_dirty_blocks() -> None:
    h = Harness(size=BLOCK * 100_000, subinterval_max_bytes=1 << 40)
    for block in range(RECENT_SEQS):  # the ring of recent seqs' fingerprints fills, then keeps its size
        h.write(100_000 - 1 - block, 1, "WRITE", 1, now=0.0)
    small = len(h.state.dumps())
    for block in range(2, 40_000, 3):
        h.write(block, 1, "WRITE", 7, now=0.0)
    assert len(h.state.dumps()) <= small + 32, "only counters change (more digits)"
    assert h.store == {}, "nothing is stored before the seal"
    h.tick(now=2.0)
    stored = sum(len(v) for v in h.store.values())
    assert stored == 16 * h.emitter.seals()[0]["block_count"], "16 bytes per sealed block: no data"
    assert max(len(v) for v in h.store.values()) <= 1 << 20


def test_duplicates_are_ignored_and_gaps_emit_a_resync_request() -> None:
    h = Harness()
    for seq in (0, 1, 1, 0, 5):
        h.seq = seq
        h.write(seq, 1, "WRITE", seq + 1, now=0.0)
    assert h.state.duplicates == 2
    resyncs = [r for t, r in h.emitter.changesets if t == "ResyncRequest"]
    assert [(r["expected_seq"], r["seen_seq"]) for r in resyncs] == [(2, 5)]


def test_a_cut_with_nothing_open_still_completes_the_point() -> None:
    h = Harness()
    h.write(3, 2, "WRITE", 7, now=0.0)
    h.tick(now=2.0)
    h.marker("REQUESTED", now=2.5, label="first")
    seals = h.emitter.seals()
    assert [s["reason"] for s in seals] == ["INTERVAL", "CUT"]
    assert seals[-1]["rp_id"] == 1 and seals[-1]["extent_count"] == 0
    (rp,) = h.emitter.recovery_points
    assert h.emitter.point(1)[0] == [3, 4]
    assert rp["cut_bytes"] == 0 and rp["label"] == "first" and rp["changeset_last"] == 2
    assert h.store == {}, "a cut drops the checksum lists it merged"


def test_a_point_is_cut_under_sustained_load_when_every_seal_is_by_size() -> None:
    """No starvation: the sub-intervals seal by SIZE, never at their end, and points still come."""
    rp_interval, subinterval = 10.0, 1.0
    h = Harness(size=BLOCK * 4096, subinterval=subinterval, rp_interval=rp_interval, subinterval_max_bytes=8 * BLOCK)
    now = 0.0
    for n in range(20_000):
        now = n * 0.01  # 100 writes a second: a SIZE seal every 8 writes (0.08 s)
        h.write(n % 4096, 1, "WRITE", n % 251, now)
        if n % 5 == 4:
            h.tick(now)
    reasons = [s["reason"] for s in h.emitter.seals()]
    assert set(reasons) == {"SIZE", "INTERVAL", "CUT"}
    assert all(after == "CUT" for before, after in zip(reasons, reasons[1:], strict=False) if before == "INTERVAL"), (
        "every other seal is by SIZE: only the tick that finds a point due seals early"
    )
    times = [rp["created_at"] / 1000 for rp in h.emitter.recovery_points]
    assert len(times) >= 19
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert max(gaps) <= rp_interval + subinterval
    assert all(rp["kind"] == "PERIODIC" and rp["cut_bytes"] == 0 for rp in h.emitter.recovery_points)


def test_a_due_point_is_cut_at_the_first_tick_past_its_due_time_not_at_the_end_of_the_subinterval() -> None:
    """Writes every 0.05 s, ticks every 0.1 s, sub-intervals of 1 s: each point comes at the tick
    that finds it due, so points are rp_interval apart, not up to one sub-interval more."""
    rp_interval = 5.0
    h = Harness(size=BLOCK * 4096, subinterval=1.0, rp_interval=rp_interval)
    for n in range(1, 401):
        now = round(n * 0.05, 3)
        h.write(n % 4096, 1, "WRITE", n % 251 + 1, now)
        if n % 2 == 0:
            h.tick(now)
    times = [rp["created_at"] for rp in h.emitter.recovery_points]
    assert times[:3] == [5100, 10100, 15100], "the first tick at or after each due time (0.05 s + 5 s, ...)"
    assert all(rp["kind"] == "PERIODIC" and rp["cut_bytes"] == 0 for rp in h.emitter.recovery_points)
    assert h.emitter.point(1)[0] == list(range(1, 103)), "the point holds every write up to its tick"


def test_under_a_steady_stream_a_subinterval_seals_at_the_first_write_past_its_end() -> None:
    """No tick needed: the write that comes after the sub-interval's end seals it, then opens the next."""
    h = Harness(subinterval=0.25, rp_interval=3600.0)
    for n in range(10):
        h.write(n, 1, "WRITE", n + 1, now=n * 0.1)  # 0.0 .. 0.9
    seals = h.emitter.seals()
    assert [s["reason"] for s in seals] == ["INTERVAL", "INTERVAL", "INTERVAL"]
    assert [(s["seq_first"], s["seq_last"]) for s in seals] == [(0, 2), (3, 5), (6, 8)]
    assert [s["sealed_at"] for s in seals] == [300, 600, 900]
    assert h.state.open is not None and h.state.open.first_seq == 9, "the sealing write opens the next one"
    mirror = bytearray(SIZE)
    h.emitter.apply_to(mirror)
    assert mirror[: 9 * BLOCK] == b"".join(bytes([n + 1]) * BLOCK for n in range(9))


def test_a_due_point_is_cut_by_the_write_that_seals_and_does_not_contain_that_write() -> None:
    h = Harness(subinterval=0.25, rp_interval=1.0)
    for n in range(13):
        h.write(n, 1, "WRITE", n + 1, now=n * 0.1)  # the point is due from 1.1 s, the seal comes at 1.2 s
    (rp,) = h.emitter.recovery_points
    assert rp["kind"] == "PERIODIC" and rp["cut_bytes"] == 0
    assert rp["seq"] == 11 and rp["created_at"] == 1200, "cut at the write of seq 12, before folding it"
    assert h.emitter.point(1)[0] == list(range(12))


def test_a_point_of_more_than_600k_blocks_comes_in_chunks_with_every_checksum() -> None:
    blocks = 700_000
    h = Harness(size=BLOCK * (blocks + 1000), extent_bytes=256 << 10, subinterval_max_bytes=64 << 20)
    now = 0.0
    written: dict[int, int] = {}
    for start in range(0, blocks, 50_000):  # ZERO ranges seal by size, spread over several change sets
        h.write(start, 50_000, "ZERO", 0, now)
    for n, block in enumerate(range(5, blocks, 997)):  # data over some of them, in later change sets
        h.write(block, 1, "WRITE", n % 251 + 1, now)
        written[block] = n % 251 + 1
    h.marker("REQUESTED", now, label="big")
    got_blocks, digests = h.emitter.point(1)
    assert got_blocks == list(range(blocks))
    zero = xxhash.xxh3_64_digest(bytes(BLOCK))
    expected = [xxhash.xxh3_64_digest(bytes([written[b]]) * BLOCK) if b in written else zero for b in got_blocks]
    assert digests == expected
    header = h.emitter.recovery_points[0]
    assert header["chunk_count"] == -(-blocks // 65_536) and header["changed_bytes"] == blocks * BLOCK
    assert len(h.emitter.seals()) > 2


ops = st.sampled_from(["WRITE", "WRITE", "WRITE", "ZERO", "TRIM"])
step = st.one_of(
    st.tuples(st.just("w"), st.integers(0, BLOCKS - 1), st.integers(1, 6), ops, st.integers(1, 255)),
    st.tuples(st.just("tick"), st.floats(0.0, 3.0)),
    st.tuples(st.just("cut"), st.sampled_from(["REQUESTED", "FLUSH"])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=60), st.integers(4, 40))
def test_recovery_points_equal_the_model_for_any_writes_and_cuts(steps: list[tuple[Any, ...]], max_blocks: int) -> None:
    h = Harness(subinterval=1.0, rp_interval=5.0, subinterval_max_bytes=max_blocks * BLOCK)
    model = bytearray(SIZE)
    changed: set[int] = set()
    expected: list[tuple[list[int], list[bytes], bytes]] = []

    def model_cut() -> None:
        blocks = sorted(changed)
        digests = [xxhash.xxh3_64_digest(model[b * BLOCK : (b + 1) * BLOCK]) for b in blocks]
        expected.append((blocks, digests, bytes(model)))
        changed.clear()

    now = 0.0
    for item in steps:
        points = len(h.emitter.recovery_points)
        if item[0] == "w":
            _, block, count, op, fill = item
            count = min(count, BLOCKS - block)
            data = h.write(block, count, op, fill, now)
            start, end = block * BLOCK, (block + count) * BLOCK
            model[start:end] = data if op == "WRITE" else bytes(end - start)
            changed.update(range(block, block + count))
        elif item[0] == "tick":
            now += item[1]
            h.tick(now)
        else:
            h.marker(item[1], now)
        if len(h.emitter.recovery_points) > points:
            if h.emitter.recovery_points[-1]["kind"] == "PERIODIC":
                assert h.emitter.recovery_points[-1]["cut_bytes"] == 0, "periodic cuts ship nothing"
            model_cut()

    assert len(h.emitter.recovery_points) == len(expected)
    mirror = bytearray(SIZE)
    applied = 0
    extents = h.emitter.extents()
    for rp, (blocks, digests, image) in zip(h.emitter.recovery_points, expected, strict=True):
        assert h.emitter.point(rp["rp_id"]) == (blocks, digests)
        upto = [e for e in extents if e["changeset_id"] <= rp["changeset_last"]]
        partial = MemoryEmitter()
        partial.changesets = [("Extent", e) for e in upto[applied:]]
        partial.apply_to(mirror)
        applied = len(upto)
        assert mirror == image, "applying the change sets up to the point gives the model's image"
    seal_ids = [s["changeset_id"] for s in h.emitter.seals()]
    assert seal_ids == list(range(1, len(seal_ids) + 1))
    for seal in h.emitter.seals():
        cs_extents = [e for e in extents if e["changeset_id"] == seal["changeset_id"]]
        assert seal["digest"] == changeset_digest(e["checksum"] for e in cs_extents)
        assert [e["index"] for e in cs_extents] == list(range(seal["extent_count"]))
    if h.state.rp_first_changeset is None:
        assert h.store == {}, "no checksum list outlives the point that needed it"


def test_flushes_with_no_write_between_them_cut_one_point_and_requests_always_cut() -> None:
    """After an outage a tracker releases every FLUSH it parked at once: they cut one point, not one
    each. A requested point is cut even when nothing changed (someone waits for its label)."""
    h = Harness()
    h.write(0, 1, "WRITE", 1, now=0.0)
    for n in range(5):
        h.marker("FLUSH", now=0.1 + n * 0.01)
    h.marker("REQUESTED", now=0.2, label="asked")
    h.write(1, 1, "WRITE", 2, now=0.3)
    h.marker("FLUSH", now=0.4)
    h.marker("FLUSH", now=0.5)
    kinds = [(rp["kind"], rp["label"]) for rp in h.emitter.recovery_points]
    assert kinds == [("FLUSH", None), ("REQUESTED", "asked"), ("FLUSH", None)]
