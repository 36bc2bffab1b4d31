"""Figure 5: cost follows the change: the same changes on a 1 GiB and a 64 GiB sparse volume.

The fold logic (`VolumeFolder`, in memory) produces the change sets and recovery points; a real
mirror (`sinks.Mirror`: sparse image, RocksDB undo store, progress file) applies them in process
through `StreamApplier`, with no Kafka in between. Both volumes get the same writes (seeded 4 KiB
writes inside the first GiB). Timed per volume: cutting a recovery point (the folder's `cut`, the
change sets it emits are applied afterwards, untimed), verifying the newest point against its
manifest chain, and reverting to the first point. Figure = time on 64 GiB / time on 1 GiB.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from tidemark.processors.fold_volume import FoldOptions, VolumeFolder
from tidemark.processors.memory_journal import MemoryJournal
from tidemark.processors.volume_state import VolumeState
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.mirror import Mirror
from tidemark.sinks.reading.manifest_index import Chunk, chunk_of
from tidemark.sinks.stream_applier import StreamApplier
from tidemark.sinks.verify import against_manifests, manifest_chain

from .env import GIB, BenchEnv
from .results import Figure, ratio_at_most

BLOCK = 4096
SUBINTERVALS_PER_POINT = 5


def fold_write(
    folder: VolumeFolder, state: VolumeState, journal: MemoryJournal, block: int, seq: int, now: float
) -> None:
    """Fold a one-block BlockWrite of epoch 1 at `now` (seconds) whose content is seeded by `seq`."""
    size = state.block_size
    data = random.Random(seq).randbytes(size)
    record = {"seq": seq, "epoch": 1, "offset": block * size, "length": size, "op": "WRITE",
              "timestamp": int(now * 1e6), "checksum": xxhash.xxh3_64_digest(data)}  # fmt: skip
    folder.on_write(state, journal.append(record, data), record, now)


@dataclass
class Buffered:
    """Emitter that holds change-set events until drained, so a timed cut excludes the apply."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    manifests: dict[int, dict[str, Any]] = field(default_factory=dict)
    chunks: dict[int, list[Chunk]] = field(default_factory=dict)

    def changeset_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None:
        self.events.append((record_type, dict(record)))

    def recovery_point_event(self, volume: str, record_type: str, record: Mapping[str, Any]) -> None:
        if record_type == "RecoveryPoint":
            self.manifests[record["rp_id"]] = dict(record)
        else:
            self.chunks.setdefault(record["rp_id"], []).append(chunk_of(dict(record)))

    def metrics(self, volume: str, record: Mapping[str, Any]) -> None:
        pass


@dataclass
class Timings:
    cut_s: list[float] = field(default_factory=list)
    verify_s: float = 0.0
    revert_s: float = 0.0
    blocks_verified: int = 0
    blocks_reverted: int = 0


def _changes(points: int, writes: int, seed: int = 5) -> list[list[int]]:
    """Per recovery point, the block indexes written (all within the first GiB)."""
    rng = random.Random(seed)
    return [[rng.randrange(GIB // BLOCK) for _ in range(writes)] for _ in range(points)]


def one_volume(root: Path, size: int, changes: list[list[int]]) -> Timings:
    name = f"cost{size // GIB}g"
    layout = MirrorLayout.of(root / "state", "bench", name)
    emitter = Buffered()
    journal = MemoryJournal()
    folder = VolumeFolder({}, emitter, FoldOptions(), journal)
    state = VolumeState(name, BLOCK, size)
    timings = Timings()
    offset = 0
    now = 1000.0
    seq = 0
    with Mirror.create_or_open(layout, root / f"{name}.img", size, BLOCK) as mirror:
        stream = StreamApplier(mirror, name, layout.spool)

        def drain() -> None:
            nonlocal offset
            for record_type, record in emitter.events:
                stream.handle(record_type, record, 0, offset)
                offset += 1
            emitter.events.clear()

        for blocks in changes:
            step = -(-len(blocks) // SUBINTERVALS_PER_POINT)
            for first in range(0, len(blocks), step):
                for block in blocks[first : first + step]:
                    fold_write(folder, state, journal, block, seq, now)
                    seq += 1
                now += 1.0
                if first + step < len(blocks):
                    folder.seal(state, now, "INTERVAL")
            started = time.perf_counter()
            folder.cut(state, now, "REQUESTED", None, None, None)
            timings.cut_s.append(time.perf_counter() - started)
            drain()
        newest = max(emitter.manifests)
        chain, _notes = manifest_chain(emitter.manifests, newest, changed_only=False)
        started = time.perf_counter()
        chunked = [(header, emitter.chunks.get(header["rp_id"], [])) for header in chain]
        report = against_manifests(mirror.view(newest).read_block, chunked, BLOCK)
        timings.verify_s = time.perf_counter() - started
        timings.blocks_verified = report.blocks_checked
        if not report.identical:
            raise RuntimeError(f"{len(report.differing_blocks)} blocks of {name} differ from the manifests")
        stream.close()
        started = time.perf_counter()
        reverted = mirror.revert(min(emitter.manifests))
        timings.revert_s = time.perf_counter() - started
        timings.blocks_reverted = reverted.blocks
    return timings


def measure(root: Path, quick: bool) -> dict[int, list[Timings]]:
    changes = _changes(points=4 if quick else 6, writes=2000 if quick else 5000)
    runs: dict[int, list[Timings]] = {GIB: [], 64 * GIB: []}
    for attempt in range(3):  # alternate the sizes; take medians (the machine is shared)
        for size in (GIB, 64 * GIB) if attempt % 2 == 0 else (64 * GIB, GIB):
            runs[size].append(one_volume(root / f"{attempt}-{size // GIB}", size, changes))
    return runs


def figures(runs: dict[int, list[Timings]]) -> list[Figure]:
    small, large = runs[GIB], runs[64 * GIB]

    def med(timings: list[Timings], pick: Any) -> float:
        return statistics.median(pick(t) for t in timings) * 1000

    cut = lambda t: statistics.median(t.cut_s)  # noqa: E731
    rows = (
        ("recovery-point cut", cut, f"{len(small[0].cut_s)} cuts each"),
        ("verify against manifests", lambda t: t.verify_s, f"{small[0].blocks_verified} blocks"),
        ("revert to the first point", lambda t: t.revert_s, f"{small[0].blocks_reverted} blocks rewritten"),
    )
    return [
        Figure(
            "5",
            f"cost: {label}, 64 GiB volume",
            med(large, pick),
            "ms",
            "same on 1 GiB",
            med(small, pick),
            ratio_at_most(1.2),
            [f"{note}; median of {len(small)} runs per size"],
        )  # fmt: skip
        for label, pick, note in rows
    ]


def run(env: BenchEnv, quick: bool) -> list[Figure]:
    root = env.root / "cost"
    root.mkdir(exist_ok=True)
    return figures(measure(root, quick))
