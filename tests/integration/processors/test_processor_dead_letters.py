"""Invalid events on the writes topic land in dead letters with a reason; other volumes flow on.

Mutated and garbage events of one volume are interleaved, on the same partition, with the valid
journal of another volume; `tidemark process` runs as a subprocess against the real broker.
"""

from __future__ import annotations

import random
from typing import Any

import lz4.frame
import pytest
import xxhash
import zstandard

from tidemark.core.volumes import VolumeSpec, publish_volume
from tidemark.schemas.codec import default_codec

from .journal import Journal, build_journal
from .test_processor_kafka import SIZE, _changesets_by_id, _final_rps, _mirror, _prepare, pipelines  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

BAD_VOLUME = "vol-bad"
BLOCK = 4096


def _valid_write(rng: random.Random, seq: int) -> tuple[bytes, int]:
    """A valid BlockWrite of the bad volume, and where its data starts in the encoding."""
    data = rng.randbytes(BLOCK)
    record = {
        "volume": BAD_VOLUME, "epoch": 1, "seq": seq, "timestamp": 0, "offset": 0, "length": BLOCK,
        "op": "WRITE", "compression": "NONE", "data": data, "checksum": xxhash.xxh3_64_digest(data),
    }  # fmt: skip
    encoded = default_codec().encode("BlockWrite", record)
    return encoded, encoded.index(data)


def _invalid_events(seed: int, count: int) -> list[bytes]:
    """Events that can never fold: truncated, extended, data flipped after the checksum, garbage."""
    rng = random.Random(seed)
    found: list[bytes] = []
    for number in range(count):
        valid, data_at = _valid_write(rng, number)
        kind = number % 4
        if kind == 0:
            found.append(valid[: rng.randrange(len(valid))])
        elif kind == 1:
            found.append(valid + rng.randbytes(rng.randrange(1, 32)))
        elif kind == 2:
            flipped = bytearray(valid)
            flipped[data_at + rng.randrange(BLOCK)] ^= 1 << rng.randrange(8)
            found.append(bytes(flipped))
        else:
            found.append(rng.randbytes(rng.randrange(1, 200)))
    return found


def _bombs() -> list[bytes]:
    """BlockWrites declaring 4 KiB whose zstd and lz4 frames hold 4 MiB (zeros): decompression bombs."""
    zeros = bytes(4 << 20)
    frames = {"ZSTD": zstandard.ZstdCompressor(level=1).compress(zeros), "LZ4": lz4.frame.compress(zeros)}
    return [
        default_codec().encode(
            "BlockWrite",
            {
                "volume": BAD_VOLUME, "epoch": 1, "seq": 1000 + n, "timestamp": 0, "offset": 0, "length": BLOCK,
                "op": "WRITE", "compression": compression, "data": frame,
                "checksum": xxhash.xxh3_64_digest(bytes(BLOCK)),
            },
        )
        for n, (compression, frame) in enumerate(frames.items())
    ]  # fmt: skip


def _interleave(journal: Journal, bad: list[bytes]) -> None:
    """Spread the bad events through the journal (same partition: it is published as one)."""
    step = max(1, len(journal.messages) // (len(bad) + 1))
    for number, value in enumerate(bad):
        at = min(len(journal.messages), (number + 1) * step + number)
        ts = journal.messages[at - 1][2]
        journal.messages.insert(at, (BAD_VOLUME.encode(), value, ts))


def test_invalid_events_go_to_dead_letters_while_another_volume_flows(pipelines: Any) -> None:  # noqa: F811
    pipeline = pipelines()
    journal = build_journal("vol-good", SIZE, writes=600, marker_every=200)
    bad = _invalid_events(seed=11, count=40) + _bombs()
    _interleave(journal, bad)
    publish_volume(pipeline.clients, pipeline.topics, VolumeSpec(BAD_VOLUME, SIZE))
    _prepare(pipeline, journal)
    pipeline.start_processor()
    pipeline.wait_for(lambda: _final_rps(pipeline, journal), "every recovery point of the good volume")

    changesets = _changesets_by_id(pipeline.read(pipeline.topics.changesets))
    assert _mirror(changesets) == journal.image, "the good volume's change sets rebuild it"

    def letters() -> list[dict[str, Any]]:
        return [r for t, r in pipeline.read(pipeline.topics.dead_letters) if t == "DeadLetter"]

    pipeline.wait_for(lambda: len(letters()) >= len(bad) + journal.garbage, "every dead letter")
    dead = letters()
    assert len(dead) == len(bad) + journal.garbage
    by_value = {letter["value"]: letter for letter in dead}
    for value in bad:
        letter = by_value[value]
        assert letter["stage"] == "processor" and letter["reason"], letter
        assert letter["volume"] == BAD_VOLUME and letter["topic"] == pipeline.topics.writes
    reasons = " | ".join(by_value[value]["reason"] for value in bad)
    assert "checksum mismatch" in reasons and ("corrupt" in reasons or "truncated" in reasons), reasons
    assert reasons.count("data expands past its declared length 4096") == 2, reasons
    assert not any(letter["volume"] == "vol-good" for letter in dead if letter["value"] != b"\xc3\x01garbage")
