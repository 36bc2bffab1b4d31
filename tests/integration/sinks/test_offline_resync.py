"""A mirror offline longer than the change-set topic's retention: detected, then resynced.

Retention is simulated deterministically: while the mirror is stopped, the head of the volume's
change-set partition is deleted with the admin API's delete_records (what retention.ms does on
its own schedule).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from tidemark.core.partitioning import volume_partition
from tidemark.sinks.layout import MirrorLayout
from tidemark.sinks.status import latest_statuses

from ...unit.sinks.stream_model import StreamModel
from .publish import publish_changesets, publish_manifest, register

pytestmark = pytest.mark.integration

BS = 4096
BLOCKS = 512  # 2 MiB volume, mostly holes


def _high_watermark(tm, partition: int) -> int:  # noqa: ANN001
    consumer = tm.clients.consumer(tm.group("watermarks"))
    try:
        return consumer.get_watermark_offsets(TopicPartition(tm.topics.changesets, partition), timeout=10)[1]
    finally:
        consumer.close()


def _delete_head(tm, partition: int, before: int) -> int:  # noqa: ANN001
    """Delete every record of the partition below offset `before`; returns the new low watermark."""
    admin = tm.clients.admin()  # keep it referenced until the futures resolve
    futures = admin.delete_records([TopicPartition(tm.topics.changesets, partition, before)])
    (deleted,) = [future.result(timeout=30) for future in futures.values()]
    return deleted.low_watermark


def _write_sparse(path: Path, image: bytes) -> None:
    """The source image as a sparse file: only non-zero blocks are written."""
    with path.open("wb") as handle:
        handle.truncate(len(image))
        for offset in range(0, len(image), BS):
            block = image[offset : offset + BS]
            if block.count(0) != BS:
                os.pwrite(handle.fileno(), block, offset)


def _step(tm, model: StreamModel, n: int, cut: bool = False) -> None:  # noqa: ANN001
    model.write((n * 11) % 64 * BS, bytes([n + 1]) * 3 * BS)
    publish_changesets(tm.clients, tm.topics, model.volume, model.seal(cut=cut))
    if cut:
        publish_manifest(tm.clients, tm.topics, model.manifest())


def test_offline_past_retention_is_detected_then_resync_copies_only_the_difference(tm, cli, tmp_path: Path) -> None:  # noqa: ANN001
    model = StreamModel("vol-off", BLOCKS * BS, block_size=BS)
    register(tm.clients, tm.topics, model)
    partition = volume_partition(model.volume, tm.settings.partitions)
    for n in range(3):
        _step(tm, model, n, cut=n == 2)
    mirror = tmp_path / "mirror.img"
    cli("mirror", "--volume", model.volume, "--path", str(mirror), "--exit-when-idle", "1")
    at_set_3 = bytes(model.image)
    assert mirror.read_bytes() == at_set_3

    # the mirror is offline: sets 4..8 are produced, then retention removes 4..6
    for n in range(3, 6):
        _step(tm, model, n)
    low = _delete_head(tm, partition, _high_watermark(tm, partition))
    for n in range(6, 8):
        _step(tm, model, n, cut=n == 7)
    assert low > 0

    stale = cli("mirror", "--volume", model.volume, "--path", str(mirror), "--exit-when-idle", "1", check=False)
    assert stale.returncode == 4, stale.stdout + stale.stderr
    assert "resync" in stale.stderr and "retention" in stale.stderr
    assert mirror.read_bytes() == at_set_3, "nothing was applied on the stale base"
    progress = json.loads(MirrorLayout.of(tm.settings.state_dir, "default", model.volume).progress.read_text())
    assert (progress["state"], progress["changeset_id"]) == ("RESYNC_NEEDED", 3)
    assert latest_statuses(tm.clients, tm.topics, model.volume)["default"]["state"] == "RESYNC_NEEDED"
    again = cli("mirror", "--volume", model.volume, "--path", str(mirror), "--exit-when-idle", "1", check=False)
    assert again.returncode == 4 and "tidemark resync" in again.stderr, "the state stays until a resync"

    # a mirror that starts now sees change set 7 first: the gap is detected too
    fresh = tmp_path / "fresh.img"
    gap = cli(
        "mirror", "--volume", model.volume, "--path", str(fresh), "--site", "late", "--exit-when-idle", "1", check=False
    )
    assert gap.returncode == 4 and "missing" in gap.stderr, gap.stdout + gap.stderr

    source = tmp_path / "source.img"
    _write_sparse(source, bytes(model.image))
    differing = sum(1 for b in range(BLOCKS) if at_set_3[b * BS : (b + 1) * BS] != model.image[b * BS : (b + 1) * BS])
    resync = cli("resync", "--volume", model.volume, "--mirror", str(mirror), "--source", str(source)).stdout
    assert f"copied {differing} blocks" in resync and "verified identical" in resync, resync
    assert "mirror now at change set 8, recovery point 2" in resync, resync
    skipped = int(resync.split("skipped ")[1].split()[0])
    assert skipped >= (BLOCKS - 128) * BS, "holes in both images are not read"
    assert mirror.read_bytes() == bytes(model.image)
    assert latest_statuses(tm.clients, tm.topics, model.volume)["default"]["state"] == "REPLICATING"

    # replication resumes after the recorded set and the mirror keeps up with new sets
    for n in range(8, 10):
        _step(tm, model, n, cut=n == 9)
    done = cli("mirror", "--volume", model.volume, "--path", str(mirror), "--exit-when-idle", "2")
    assert "now at change set 10" in done.stdout, done.stdout
    assert mirror.read_bytes() == bytes(model.image)
    _write_sparse(source, bytes(model.image))
    assert (
        "identical" in cli("verify", "--volume", model.volume, "--mirror", str(mirror), "--source", str(source)).stdout
    )
    assert "identical" in cli("verify", "--volume", model.volume, "--mirror", str(mirror), "--rp", "3").stdout
