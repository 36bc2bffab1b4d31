"""One primary, one tracker: generations fence older writers; a reused seq is a duplicate or a conflict.

The real handler over a journal held in a list (see test_handler.py): real codec, real RocksDB store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tidemark.core.volumes import VolumeSpec
from tidemark.processors.admission import RECENT_SEQS
from tidemark.processors.exceptions import RefusedEventError
from tidemark.processors.fold_volume import FoldOptions, VolumeFolder
from tidemark.processors.memory_journal import MemoryJournal
from tidemark.processors.ticker import TICK_KEY
from tidemark.processors.volume_state import VolumeState
from tidemark.schemas.codec import default_codec

from .memory_emitter import MemoryEmitter
from .test_handler import BLOCK, TOPICS, ListJournal, Message, Run

SPEC = VolumeSpec("fv", 64 * BLOCK)
OPTIONS = FoldOptions(subinterval=0.5, rp_interval=3600, metrics_interval=1.0)


def write(seq: int, block: int, fill: int, ts: float, epoch: int = 1, generation: int = 0) -> Message:
    data = bytes([fill]) * BLOCK
    record = {
        "volume": SPEC.name, "epoch": epoch, "seq": seq, "timestamp": int(ts * 1e6), "offset": block * BLOCK,
        "length": BLOCK, "op": "WRITE", "compression": "NONE", "data": data,
        "checksum": xxhash.xxh3_64_digest(data), "generation": generation,
    }  # fmt: skip
    return SPEC.name.encode(), default_codec().encode("BlockWrite", record), ts


def marker(kind: str, ts: float, epoch: int | None, generation: int, after_seq: int | None = None) -> Message:
    record = {
        "volume": SPEC.name, "marker_id": f"{kind}-{ts}", "kind": kind, "timestamp": int(ts * 1e6), "epoch": epoch,
        "after_seq": after_seq, "label": None, "group": None, "barrier_id": None, "generation": generation,
    }  # fmt: skip
    return SPEC.name.encode(), default_codec().encode("Marker", record), ts


def tick(ts: float) -> Message:
    return TICK_KEY, b"", ts


def decoded(run: Run, topic: str) -> list[tuple[str, dict[str, Any]]]:
    return [default_codec().decode(value) for value in run.events(topic)]


def mirror(run: Run) -> bytes:
    image = bytearray(SPEC.size)
    for record_type, record in decoded(run, TOPICS.changesets):
        if record_type == "Extent":
            image[record["offset"] : record["offset"] + record["length"]] = record["data"]
    return bytes(image)


def failover_journal() -> list[Message]:
    """Generation 0 writes seqs 0-4; a failover marker; the old tracker goes on (fenced) while the
    new primary (generation 1) starts its own seqs at 3; the old tracker's FLUSH marker is fenced too."""
    messages = [write(seq, seq, 10 + seq, 100.0 + seq * 0.01) for seq in range(5)]
    messages += [marker("EPOCH_START", 100.2, None, 1)]
    messages += [
        write(5, 5, 99, 100.21),
        write(6, 0, 99, 100.22),
    ]  # the old primary, fenced
    messages += [marker("EPOCH_START", 100.3, 7, 1)]
    messages += [write(3 + n, 20 + n, 50 + n, 100.31 + n * 0.01, epoch=7, generation=1) for n in range(3)]
    messages += [write(7, 1, 99, 100.4), marker("FLUSH", 100.41, 1, 0), tick(100.5)]
    messages += [
        write(6, 30, 60, 100.6, epoch=7, generation=1),
        tick(102.0),
        tick(104.0),
    ]
    return messages


def fenced_count() -> float:
    value = REGISTRY.get_sample_value("tidemark_fenced_events_total", {"component": "processor", "volume": SPEC.name})
    return value or 0.0


def test_after_a_generation_marker_the_old_primary_is_dead_lettered_and_counted(
    tmp_path: Path,
) -> None:
    journal = ListJournal(failover_journal())
    before = fenced_count()
    run = Run(tmp_path / "s", journal, {SPEC.name: SPEC}, OPTIONS, cache=128 << 20)
    run.handle(0, len(journal.messages), 4, {})

    letters = decoded(run, TOPICS.dead_letters)
    assert len(letters) == 4, [r["reason"] for _, r in letters]
    reasons = [r["reason"] for _, r in letters]
    assert (
        "volume fv seq 5 (epoch 1" in reasons[0]
        and "generation 0 is older than the volume's generation 1" in reasons[0]
    )
    assert all("stop it" in reason for reason in reasons)
    assert "FLUSH marker" in reasons[3]
    assert fenced_count() - before == 4
    metrics = [r for _, r in decoded(run, TOPICS.metrics)]
    assert sum(m["fenced_events"] for m in metrics) == 4

    expected = bytearray(SPEC.size)
    for block, fill in [
        (0, 10),
        (1, 11),
        (2, 12),
        (3, 13),
        (4, 14),
        (20, 50),
        (21, 51),
        (22, 52),
        (30, 60),
    ]:
        expected[block * BLOCK : (block + 1) * BLOCK] = bytes([fill]) * BLOCK
    assert mirror(run) == bytes(expected), "no block of the old generation after the marker"
    changesets = decoded(run, TOPICS.changesets)
    assert not [r for t, r in changesets if t == "ResyncRequest"], "a new generation restarts its seqs: no gap"
    seals = [r for t, r in changesets if t == "ChangeSetSealed"]
    assert (seals[0]["seq_first"], seals[0]["seq_last"]) == (0, 4), "the generation change seals: no mixed change set"
    assert (seals[1]["seq_first"], seals[-1]["seq_last"]) == (3, 6)
    assert [s["generation"] for s in seals] == [0] + [1] * (len(seals) - 1), "each seal names its writes' generation"


def test_a_restart_after_the_fence_decides_the_same(tmp_path: Path) -> None:
    journal = ListJournal(failover_journal())
    end = len(journal.messages)
    reference = Run(tmp_path / "ref", journal, {SPEC.name: SPEC}, OPTIONS, cache=128 << 20)
    reference.handle(0, end, 3, {})
    for crash_at in (6, 9, 12, 15):
        changelog: dict[bytes, bytes | None] = {}
        first = Run(
            tmp_path / f"a{crash_at}",
            journal,
            {SPEC.name: SPEC},
            OPTIONS,
            cache=128 << 20,
        )
        first.handle(0, crash_at, 3, changelog)
        second = Run(
            tmp_path / f"b{crash_at}",
            journal,
            {SPEC.name: SPEC},
            OPTIONS,
            cache=0,
            changelog=changelog,
        )
        start = second.handler.refold_start(0)
        if start is not None:
            second.handler.refold(0, journal.scan(start, crash_at))
        second.handle(crash_at, end, 3, changelog)
        for topic in (TOPICS.changesets, TOPICS.dead_letters, TOPICS.recovery_points):
            assert first.events(topic) + second.events(topic) == reference.events(topic), (crash_at, topic)


def test_a_real_duplicate_is_dropped_silently(tmp_path: Path) -> None:
    messages = [write(seq, seq, seq + 1, 100.0) for seq in range(4)]
    messages += [messages[2], messages[3], write(4, 9, 5, 100.1), tick(101.0)]
    run = Run(
        tmp_path / "s",
        ListJournal(messages),
        {SPEC.name: SPEC},
        OPTIONS,
        cache=128 << 20,
    )
    run.handle(0, len(messages), 100, {})
    assert run.events(TOPICS.dead_letters) == []
    assert not [r for t, r in decoded(run, TOPICS.changesets) if t == "ResyncRequest"]
    assert run.handler.partitions[0].states[SPEC.name].duplicates == 2


def test_another_tracker_reusing_a_seq_is_refused_and_requests_a_resync(
    tmp_path: Path,
) -> None:
    messages = [write(seq, seq, seq + 1, 100.0) for seq in range(3)]
    messages += [
        write(2, 2, 77, 100.01),  # same epoch, other content
        write(1, 1, 2, 100.02, epoch=2),  # same content, another epoch: another tracker
        write(2, 40, 3, 100.03),  # same content, other extent
    ]
    messages += [write(seq, 8 + seq % 8, seq % 200 + 1, 100.1) for seq in range(3, 100)]
    messages += [
        write(5, 13, 6, 100.2),
        tick(101.0),
    ]  # seq 5 is past what is remembered
    run = Run(
        tmp_path / "s",
        ListJournal(messages),
        {SPEC.name: SPEC},
        OPTIONS,
        cache=128 << 20,
    )
    run.handle(0, len(messages), 100, {})

    reasons = [r["reason"] for _, r in decoded(run, TOPICS.dead_letters)]
    assert len(reasons) == 4, reasons
    assert "seq 2 was already folded with other content or another extent" in reasons[0]
    assert "seq 1 was already folded from epoch 1" in reasons[1]
    assert "seq 2 was already folded with other content" in reasons[2]
    assert "is older than the last 64 seqs folded" in reasons[3]
    assert all("two trackers write this volume at once" in r and "volume fv" in r for r in reasons)
    resyncs = [r for t, r in decoded(run, TOPICS.changesets) if t == "ResyncRequest"]
    assert [(r["expected_seq"], r["seen_seq"]) for r in resyncs] == [
        (3, 2),
        (3, 1),
        (3, 2),
        (100, 5),
    ]
    assert all(r["reason"] == reason for r, reason in zip(resyncs, reasons, strict=True))
    assert mirror(run)[2 * BLOCK : 3 * BLOCK] == bytes([3]) * BLOCK, "the first tracker's write stays"
    assert mirror(run)[40 * BLOCK : 41 * BLOCK] == bytes(BLOCK)


retry = st.tuples(st.sampled_from(["dup", "other-content", "other-epoch"]), st.integers(0, RECENT_SEQS - 1))
steps = st.lists(st.one_of(st.tuples(st.just("new"), st.integers(0, 15), st.integers(1, 255)), retry), max_size=120)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_retries_are_dropped_and_reused_seqs_refused_for_any_interleaving(plan: list[tuple[Any, ...]]) -> None:
    """The folded image is the new writes' only; each retry drops silently; each reuse is refused with a resync."""
    emitter = MemoryEmitter()
    journal = MemoryJournal()
    folder = VolumeFolder({}, emitter, FoldOptions(subinterval_max_bytes=1 << 30), journal)
    state = VolumeState("p", 512, 16 * 512)
    folded: list[dict[str, Any]] = []
    model = bytearray(state.size)
    drops = refusals = 0
    for step in plan:
        if step[0] == "new":
            data = bytes([step[2]]) * 512
            record = _record(len(folded), step[1], data, epoch=1)
            folded.append(record)
            model[step[1] * 512 : (step[1] + 1) * 512] = data
        elif folded:
            again = dict(folded[max(0, len(folded) - 1 - step[1])])
            if step[0] == "other-content":
                again = _record(again["seq"], again["offset"] // 512, b"\x00" * 511 + b"\x01", epoch=1)
            elif step[0] == "other-epoch":
                again["epoch"] = 2
            record = again
        else:
            continue
        try:
            folder.on_write(state, journal.append(record, record["data"]), record, 0.0)
            drops += step[0] != "new"
            assert step[0] in ("new", "dup")
        except RefusedEventError as exc:
            refusals += 1
            assert step[0] in ("other-content", "other-epoch") and not exc.fenced
    folder.seal(state, 1.0, "INTERVAL")
    emitter.apply_to(image := bytearray(state.size))
    assert image == model
    assert state.duplicates == drops
    assert len([r for t, r in emitter.changesets if t == "ResyncRequest"]) == refusals


def _record(seq: int, block: int, data: bytes, epoch: int) -> dict[str, Any]:
    return {
        "volume": "p", "epoch": epoch, "seq": seq, "timestamp": 0, "offset": block * 512, "length": 512,
        "op": "WRITE", "data": data, "checksum": xxhash.xxh3_64_digest(data), "generation": 0,
    }  # fmt: skip


def test_a_new_epoch_skips_the_seqs_never_confirmed_and_a_late_one_is_stale(tmp_path: Path) -> None:
    """A reconnecting tracker starts its epoch above every seq it assigned: seqs 5-7 were in doubt
    (one, seq 6, lands late, after the new epoch began); their blocks come again in epoch 2. No
    gap, no resync: the late write is a stale dead letter and the image is epoch 2's."""
    messages = [write(seq, seq, 10 + seq, 100.0 + seq * 0.01) for seq in range(5)]
    messages += [marker("EPOCH_START", 100.1, 2, 0, after_seq=7)]
    messages += [write(6, 6, 66, 100.11)]  # epoch 1's seq 6, in doubt, landing late
    messages += [write(8 + n, 5 + n, 90 + n, 100.2 + n * 0.01, epoch=2) for n in range(3)]  # blocks 5-7 again
    messages += [write(11, 0, 99, 100.3, epoch=2), tick(101.0), tick(102.0)]
    run = Run(tmp_path / "s", ListJournal(messages), {SPEC.name: SPEC}, OPTIONS, cache=128 << 20)
    run.handle(0, len(messages), 100, {})

    assert not [r for t, r in decoded(run, TOPICS.changesets) if t == "ResyncRequest"]
    reasons = [r["reason"] for _, r in decoded(run, TOPICS.dead_letters)]
    assert len(reasons) == 1 and "seq 6 (epoch 1" in reasons[0] and "stale" in reasons[0], reasons
    image = mirror(run)
    assert image[:BLOCK] == bytes([99]) * BLOCK
    assert [image[b * BLOCK] for b in range(1, 8)] == [11, 12, 13, 14, 90, 91, 92]
    state = run.handler.partitions[0].states[SPEC.name]
    assert (state.last_seq, state.epoch, state.skipped_seqs) == (11, 2, 3)


def test_an_epoch_start_behind_the_folded_seqs_skips_nothing(tmp_path: Path) -> None:
    """A short `after_seq` (a tracker restarted without its memory) moves nothing back: a reused seq
    is still a conflict with a resync, as before."""
    messages = [write(seq, seq, 10 + seq, 100.0 + seq * 0.01) for seq in range(5)]
    messages += [marker("EPOCH_START", 100.1, 2, 0, after_seq=2), write(3, 9, 77, 100.2, epoch=2), tick(101.0)]
    run = Run(tmp_path / "s", ListJournal(messages), {SPEC.name: SPEC}, OPTIONS, cache=128 << 20)
    run.handle(0, len(messages), 100, {})

    resyncs = [r for t, r in decoded(run, TOPICS.changesets) if t == "ResyncRequest"]
    assert [(r["expected_seq"], r["seen_seq"]) for r in resyncs] == [(5, 3)]
    assert run.handler.partitions[0].states[SPEC.name].skipped_seqs == 0


def test_a_point_names_the_generation_of_its_writes(tmp_path: Path) -> None:
    """A point cut before the failover holds generation 0's writes; one cut after it, generation 1's."""
    messages = failover_journal()
    messages[4:4] = [marker("REQUESTED", 100.05, None, 0)]
    messages += [marker("REQUESTED", 106.0, None, 1), tick(107.0)]
    run = Run(tmp_path / "s", ListJournal(messages), {SPEC.name: SPEC}, OPTIONS, cache=128 << 20)
    run.handle(0, len(messages), 4, {})

    points = [r for t, r in decoded(run, TOPICS.recovery_points) if t == "RecoveryPoint"]
    assert [p["generation"] for p in points] == [0, 1]
