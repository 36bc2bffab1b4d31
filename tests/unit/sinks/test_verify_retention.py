"""verify's comparisons and the --retain parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tidemark.sinks.exceptions import RetentionError
from tidemark.sinks.reading.manifest_index import Chunk, ChunkSequence, chunk_of
from tidemark.sinks.storage.progress import PointRecord
from tidemark.sinks.storage.retention import Retention, parse_retain
from tidemark.sinks.verify import against_manifests, against_source, manifest_chain

from .conftest import MakeHarness
from .harness import wire
from .stream_model import Event, StreamModel

BS = 512


def _mirror_with_points(make_harness: MakeHarness, chunk_blocks: int = 65_536):
    """Two points; returns the model, the harness and rp -> its manifest events (chunks, header)."""
    model = StreamModel("vol", 32 * BS, block_size=BS)
    h = make_harness(model)
    manifests = {}
    model.write(0, b"a" * 8 * BS)
    h.feed(model.seal(cut=True))
    manifests[1] = wire(model.manifest(chunk_blocks=chunk_blocks))
    model.write(4 * BS, b"b" * 8 * BS)
    h.feed(model.seal(cut=True))
    manifests[2] = wire(model.manifest(chunk_blocks=chunk_blocks))
    return model, h, manifests


def _headers(manifests: dict[int, list[Event]]) -> dict[int, dict[str, Any]]:
    return {rp: events[-1][1] for rp, events in manifests.items()}


def _streams(
    manifests: dict[int, list[Event]], chain: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], Iterator[Chunk]]]:
    """Each header of the chain with its chunks, checked the way the Kafka reader checks them."""

    def chunks(events: list[Event]) -> Iterator[Chunk]:
        sequence = ChunkSequence("vol", events[-1][1])
        for offset, (_, record) in enumerate(events[:-1]):
            yield sequence.accept(chunk_of(record), offset)
        sequence.finish()

    return [(header, chunks(manifests[header["rp_id"]])) for header in chain]


@pytest.mark.parametrize("chunk_blocks", [65_536, 3, 1])
def test_manifests_of_every_point_match(make_harness: MakeHarness, chunk_blocks: int) -> None:
    _, h, manifests = _mirror_with_points(make_harness, chunk_blocks)
    for rp in (1, 2):
        chain, notes = manifest_chain(_headers(manifests), rp, changed_only=False)
        report = against_manifests(h.mirror.view(rp).read_block, _streams(manifests, chain), BS)
        assert report.identical and not notes
    chain, _ = manifest_chain(_headers(manifests), 2, changed_only=False)
    assert against_manifests(h.mirror.view(2).read_block, _streams(manifests, chain), BS).blocks_checked == 12


def test_differences_are_listed_as_coalesced_extents(make_harness: MakeHarness, tmp_path: Path) -> None:
    model, h, manifests = _mirror_with_points(make_harness, chunk_blocks=2)
    h.mirror.image.pwrite(5 * BS, b"X" * 2 * BS)
    h.mirror.image.pwrite(20 * BS, b"Y" * BS)
    chain, _ = manifest_chain(_headers(manifests), 2, changed_only=True)
    report = against_manifests(h.mirror.view(2).read_block, _streams(manifests, chain), BS)
    assert report.extents() == [(5 * BS, 2 * BS)]  # block 20 is not in any manifest
    source = tmp_path / "source.img"
    source.write_bytes(bytes(model.image))
    full = against_source(h.mirror.image, source, BS)
    assert full.extents() == [(5 * BS, 2 * BS), (20 * BS, BS)] and full.blocks_checked == 32


def test_missing_ancestor_manifest_is_noted(make_harness: MakeHarness) -> None:
    _, _, manifests = _mirror_with_points(make_harness)
    chain, notes = manifest_chain({2: manifests[2][-1][1]}, 2, changed_only=False)
    assert len(chain) == 1 and "recovery point 1" in notes[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", Retention(count=3)),
        ("90m", Retention(seconds=5400)),
        ("24h", Retention(seconds=86400)),
        (None, Retention()),
    ],
)
def test_parse_retain(text: str | None, expected: Retention) -> None:
    assert parse_retain(text) == expected


@pytest.mark.parametrize("text", ["0", "3x", "-1", "h"])
def test_parse_retain_rejects(text: str) -> None:
    with pytest.raises(RetentionError):
        parse_retain(text)


def test_duration_retention_keeps_the_newest_point() -> None:
    points = [PointRecord(i, i, i, i, sealed_at=i * 1000) for i in range(1, 5)]
    assert Retention(seconds=2).expired(points, now_ms=4500) == [1, 2]
    assert Retention(seconds=1).expired(points, now_ms=100_000) == [1, 2, 3]
