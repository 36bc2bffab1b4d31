"""The folding logic against a plain in-memory model (no Kafka)."""

from __future__ import annotations

from typing import Any

import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from tidemark.processors.folder import FoldOptions, VolumeFolder
from tidemark.processors.folding import changeset_digest
from tidemark.processors.volume_state import VolumeState

from .memory_emitter import MemoryEmitter

BLOCK = 512
BLOCKS = 64
SIZE = BLOCK * BLOCKS


def _folder(**options: Any) -> tuple[VolumeFolder, MemoryEmitter, dict[bytes, bytes]]:
    store: dict[bytes, bytes] = {}
    emitter = MemoryEmitter()
    fold = FoldOptions(extent_bytes=4 * BLOCK, **options)
    return VolumeFolder(store, emitter, fold), emitter, store


def _write(seq: int, block: int, count: int, op: str, fill: int) -> tuple[dict[str, Any], bytes]:
    length = count * BLOCK
    data = bytes([fill]) * length if op == "WRITE" else b""
    record = {"volume": "v", "epoch": 1, "seq": seq, "timestamp": seq, "offset": block * BLOCK, "length": length, "op": op}
    return record, data


def test_overwrites_within_a_subinterval_ship_each_block_once_with_the_last_content() -> None:
    folder, emitter, store = _folder()
    state = VolumeState("v", BLOCK, SIZE)

    def scenario() -> None:
        seq = 0
        for round_ in range(50):
            for block in range(0, 100 % BLOCKS + 36):  # 36 + 28 = 64 blocks, rewritten 50 times
                record, data = _write(seq, block % BLOCKS, 1, "WRITE", round_)
                folder.on_write(state, record, data, now=0.0)
                seq += 1
        folder.on_tick(state, now=1.5)

    scenario()
    shipped = sum(e["length"] for e in emitter.extents())
    assert shipped == BLOCKS * BLOCK
    mirror = bytearray(SIZE)
    emitter.apply_to(mirror)
    assert mirror == bytes([49]) * SIZE
    (seal,) = emitter.seals()
    assert seal["block_count"] == BLOCKS and seal["reason"] == "INTERVAL"
    assert seal["digest"] == changeset_digest(e["checksum"] for e in emitter.extents())
    assert not [k for k in store if k.startswith(b"b\x00")], "open blocks are deleted at the seal"


def test_duplicates_are_ignored_and_gaps_emit_a_resync_request() -> None:
    folder, emitter, _ = _folder()
    state = VolumeState("v", BLOCK, SIZE)

    def scenario() -> None:
        for seq in (0, 1, 1, 0, 5):
            record, data = _write(seq, seq, 1, "WRITE", seq + 1)
            folder.on_write(state, record, data, now=0.0)

    scenario()
    assert state.duplicates == 2
    resyncs = [r for t, r in emitter.changesets if t == "ResyncRequest"]
    assert [(r["expected_seq"], r["seen_seq"]) for r in resyncs] == [(2, 5)]


def test_a_cut_with_nothing_open_still_completes_the_point() -> None:
    folder, emitter, _ = _folder()
    state = VolumeState("v", BLOCK, SIZE)

    def scenario() -> None:
        record, data = _write(0, 3, 2, "WRITE", 7)
        folder.on_write(state, record, data, now=0.0)
        folder.on_tick(state, now=2.0)
        folder.on_marker(state, {"kind": "REQUESTED", "label": "first"}, now=2.5)

    scenario()
    seals = emitter.seals()
    assert [s["reason"] for s in seals] == ["INTERVAL", "CUT"]
    assert seals[-1]["rp_id"] == 1 and seals[-1]["extent_count"] == 0
    (rp,) = emitter.recovery_points
    assert list(BitMap.deserialize(rp["bitmap"])) == [3, 4]
    assert rp["cut_bytes"] == 0 and rp["label"] == "first" and rp["changeset_last"] == 2


ops = st.sampled_from(["WRITE", "WRITE", "WRITE", "ZERO", "TRIM"])
step = st.one_of(
    st.tuples(st.just("w"), st.integers(0, BLOCKS - 1), st.integers(1, 6), ops, st.integers(1, 255)),
    st.tuples(st.just("tick"), st.floats(0.0, 3.0)),
    st.tuples(st.just("cut"), st.sampled_from(["REQUESTED", "FLUSH"])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=60))
def test_recovery_points_equal_the_model_for_any_writes_and_cuts(steps: list[tuple[Any, ...]]) -> None:
    folder, emitter, store = _folder(subinterval=1.0, rp_interval=5.0)
    state = VolumeState("v", BLOCK, SIZE)
    model = bytearray(SIZE)
    changed: set[int] = set()
    expected: list[tuple[list[int], list[bytes], bytes]] = []

    def model_cut() -> None:
        blocks = sorted(changed)
        digests = [xxhash.xxh3_64_digest(model[b * BLOCK : (b + 1) * BLOCK]) for b in blocks]
        expected.append((blocks, digests, bytes(model)))
        changed.clear()

    def scenario() -> None:
        now = 0.0
        seq = 0
        for item in steps:
            if item[0] == "w":
                _, block, count, op, fill = item
                count = min(count, BLOCKS - block)
                record, data = _write(seq, block, count, op, fill)
                seq += 1
                folder.on_write(state, record, data, now)
                start, end = block * BLOCK, (block + count) * BLOCK
                model[start:end] = data if op == "WRITE" else bytes(end - start)
                changed.update(range(block, block + count))
            elif item[0] == "tick":
                now += item[1]
                points = len(emitter.recovery_points)
                folder.on_tick(state, now)
                if len(emitter.recovery_points) > points:
                    assert emitter.recovery_points[-1]["cut_bytes"] == 0, "periodic cuts ship nothing"
                    model_cut()
            else:
                folder.on_marker(state, {"kind": item[1]}, now)
                model_cut()

    scenario()
    assert len(emitter.recovery_points) == len(expected)
    mirror = bytearray(SIZE)
    applied = 0
    extents = emitter.extents()
    for rp, (blocks, digests, image) in zip(emitter.recovery_points, expected, strict=True):
        assert list(BitMap.deserialize(rp["bitmap"])) == blocks
        assert [rp["checksums"][i : i + 8] for i in range(0, len(rp["checksums"]), 8)] == digests
        upto = [e for e in extents if e["changeset_id"] <= rp["changeset_last"]]
        partial = MemoryEmitter()
        partial.changesets = [("Extent", e) for e in upto[applied:]]
        partial.apply_to(mirror)
        applied = len(upto)
        assert mirror == image, "applying the change sets up to the point gives the model's image"
    seal_ids = [s["changeset_id"] for s in emitter.seals()]
    assert seal_ids == list(range(1, len(seal_ids) + 1))
    if not state.open and not state.changesets_since_rp:
        assert not store or all(k.startswith(b"c\x00") is False for k in store)
