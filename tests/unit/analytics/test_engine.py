"""The engine over plain dicts (no Kafka): ticks close idle windows, the raise waits for the
points topic, registry sizes reach the heatmap, undecodable input is skipped, state is flushed
per partition, mirrors and dead letters alert once."""

from __future__ import annotations

import random
from typing import Any

from tidemark.analytics.engine import TICK_KEY, Engine, Stores
from tidemark.analytics.settings import AnalyticsSettings
from tidemark.analytics.views import active_alerts, heatmap, overview, points
from tidemark.core.partitioning import volume_partition
from tidemark.schemas.codec import default_codec

from .generated import BS, encrypted, text, write

SETTINGS = AnalyticsSettings(window_s=1.0, min_samples=4, clear_windows=2, dead_letters=1)
T0 = 1_700_000_000_000
PARTITIONS = 3
CODEC = default_codec()


def engine() -> Engine:
    stores = Stores(volumes={}, windows={}, points={}, mirrors={}, dead={}, registry={})
    return Engine(SETTINGS, stores, PARTITIONS)


def encoded_write(seq: int, data: bytes) -> bytes:
    return CODEC.encode("BlockWrite", write("vol", seq, seq * BS * 4 % (1 << 22), data))


def point(rp_id: int, seq: int) -> bytes:
    return CODEC.encode("RecoveryPoint", {
        "volume": "vol", "rp_id": rp_id, "seq": seq, "created_at": T0, "kind": "REQUESTED", "label": f"p{rp_id}",
        "parent": None, "block_size": BS, "volume_size": 1 << 22, "block_count": 1, "chunk_count": 1,
        "changeset_first": None, "changeset_last": None, "changed_bytes": BS, "cut_bytes": 0, "group": None,
        "barrier_id": None, "generation": 0,
    })  # fmt: skip


def feed(e: Engine, seqs: range, make: Any, start_ms: int) -> list[dict[str, Any]]:
    partition = volume_partition("vol", PARTITIONS)
    rng = random.Random(1)
    alerts = []
    for n, seq in enumerate(seqs):
        alerts += e.on_writes(b"vol", encoded_write(seq, make(rng)), partition, start_ms + n * 100)
    return alerts


def tick(e: Engine, now: int) -> list[dict[str, Any]]:
    return e.on_writes(TICK_KEY, b"", volume_partition("vol", PARTITIONS), now)


def test_the_raise_names_the_point_before_the_change_once_points_settle() -> None:
    e = engine()
    e.on_volume(b"vol", CODEC.encode("Volume", {"name": "vol", "size": 1 << 22, "block_size": BS, "group": None,
                                                "created_at": T0, "deleted": False}))  # fmt: skip
    assert feed(e, range(1, 11), lambda r: text(4 * BS, r), T0) == []
    assert tick(e, T0 + 1500) == []  # the normal window closes: the baseline
    e.on_point(point(1, 10), T0 + 1600)
    assert feed(e, range(11, 21), lambda r: encrypted(text(4 * BS, r), r.randbytes(32)), T0 + 2000) == []
    assert tick(e, T0 + 3500) == []  # suspected, waiting: no point after the change seen yet
    chunk = {"volume": "vol", "rp_id": 2, "index": 0, "first_block": 0, "last_block": 0}
    chunk |= {"bitmap": b"", "checksums": b""}
    e.on_point(CODEC.encode("RecoveryPointChunk", chunk), T0 + 3550)
    e.on_point(point(2, 20), T0 + 3600)
    raised = tick(e, T0 + 3700)
    assert [(a["kind"], a["state"], a["clean_rp_id"], a["change_seq"]) for a in raised] == [
        ("ENCRYPTION_SUSPECTED", "RAISED", 1, 11)
    ]
    assert active_alerts(e) == raised and points(e, "vol")["clean_points"][0]["rp_id"] == 1
    cleared = tick(e, T0 + 6100)
    assert [a["state"] for a in cleared] == ["CLEARED"] and active_alerts(e) == []
    assert heatmap(e, "vol")["size"] == 1 << 22
    assert overview(e)["volumes"][0]["writes"] == 20


def test_state_is_flushed_on_ticks_of_its_partition_only() -> None:
    e = engine()
    feed(e, range(1, 4), lambda r: text(4 * BS, r), T0)
    assert e.stores.volumes == {}
    other = (volume_partition("vol", PARTITIONS) + 1) % PARTITIONS
    e.on_writes(TICK_KEY, b"", other, T0 + 500)
    assert e.stores.volumes == {}
    tick(e, T0 + 600)
    assert e.stores.volumes["vol"]["writes"] == 3
    restarted = Engine(SETTINGS, e.stores, PARTITIONS)
    assert restarted.live["vol"].writes == 3


def test_undecodable_and_foreign_events_are_skipped_not_fatal() -> None:
    e = engine()
    partition = volume_partition("vol", PARTITIONS)
    assert e.on_writes(b"vol", b"not avro", partition, T0) == []
    assert e.on_writes(b"vol", point(1, 1), partition, T0) == []
    assert e.on_writes(b"vol", None, partition, T0) == []
    assert e.skipped == 3


def test_mirror_and_dead_letter_alerts() -> None:
    e = engine()
    status = {"site": "dr", "volume": "vol", "state": "RESYNC_NEEDED", "changeset_id": None, "applied_seq": 3,
              "rp_id": None, "lag_events": 9, "lag_seconds": 120.0, "timestamp": T0, "message": "seq gap"}  # fmt: skip
    found = e.on_mirror_status(CODEC.encode("MirrorStatus", status), T0)
    assert sorted(a["kind"] for a in found) == ["MIRROR_RESYNC_NEEDED", "RPO_LAG_HIGH"]
    dead = {"stage": "processor", "reason": "checksum mismatch", "topic": "t.writes", "partition": 0, "offset": 7,
            "key": None, "value": b"x", "volume": None, "timestamp": T0, "value_length": 1,
            "value_xxh3": None}  # fmt: skip
    found = e.on_dead_letter(CODEC.encode("DeadLetter", dead), T0 + 10)
    assert [(a["kind"], a["volume"]) for a in found] == [("DEAD_LETTERS", None)]
    e.clock_ms = T0 + 4_000
    assert [a["state"] for a in e.advance_dead_letters()] == ["CLEARED"]
    assert len(overview(e)["sites"]) == 1
