"""`tidemark resync`: bring a mirror that fell out of the stream back to a source, then resume.

Used when the mirror is RESYNC_NEEDED (offline past the change-set topic's retention) or after any
doubt. The source must be quiesced and the pipeline caught up with it: the newest change set on
the topic then describes the source's content, and the mirror is recorded at that set, so the
applier resumes right after it. Steps:

1. note the newest change set of the volume in the topic (before the scan);
2. scan both images block by block (xxh3-64), skipping ranges that are holes in both; save the
   pre-image of each differing block under the mirror's undo base (older recovery points stay
   reachable), then copy it from the source (zeros punch a hole);
3. verify the whole mirror against the source; only then record the progress (REPLICATING at
   that change set, with its recovery point if it completes one) and publish the status.

Cost: the data ranges of both images are read once to compare and once to verify; only differing
blocks are written.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import xxhash

from tidemark.core.blocks import runs
from tidemark.core.image_io import data_ranges, open_image, pread_full
from tidemark.core.kafka import KafkaClients
from tidemark.core.progress import OnProgress
from tidemark.core.topics import Topics

from ..exceptions import SinkError, VerifyMismatchError
from ..layout import DEFAULT_SITE, MirrorLayout, exclusive
from ..mirror import Mirror
from ..reading.stream_head import StreamHead, newest_changeset
from ..status import publish_status, status_record
from ..storage.data_ranges import union_aligned
from ..storage.progress import REPLICATING, PointRecord
from ..verify import against_source

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ResyncRequest:
    volume: str
    mirror: Path
    source: Path
    site: str = DEFAULT_SITE


@dataclass
class ResyncReport:
    scanned_bytes: int = 0
    skipped_bytes: int = 0  # holes in both images
    copied_blocks: int = 0
    verified_blocks: int = 0
    changeset_id: int = 0
    rp_id: int | None = None


def run_resync(
    clients: KafkaClients,
    topics: Topics,
    state_dir: Path,
    request: ResyncRequest,
    on_progress: OnProgress | None = None,
) -> ResyncReport:
    layout = MirrorLayout.of(state_dir, request.site, request.volume)
    with exclusive(layout, "resync"), Mirror.open_existing(layout, request.mirror) as mirror:
        mirror.require_not_promoted("resync")
        mirror.require_not_reverting()
        head = newest_changeset(clients, topics, request.volume)
        report = copy_differing(mirror, request.source, on_progress)
        verified = against_source(mirror.image, request.source, mirror.block_size)
        if not verified.identical:
            raise VerifyMismatchError(
                f"after the resync {len(verified.differing_blocks)} blocks of {request.mirror} still "
                f"differ from {request.source}: was the source written to during the resync? Quiesce "
                "it and run resync again"
            )
        report.verified_blocks = verified.blocks_checked
        _record(mirror, head, request.source)
        report.changeset_id, report.rp_id = mirror.progress.changeset_id, mirror.progress.rp_id
        producer = clients.producer()
        publish_status(producer, topics, status_record(mirror.progress, 0, 0.0))
        producer.flush(30)
    return report


def copy_differing(mirror: Mirror, source: Path, on_progress: OnProgress | None = None) -> ResyncReport:
    """Make the mirror's blocks equal to the source's, writing only those that differ."""
    size, bs = mirror.image.size, mirror.block_size
    if os.path.getsize(source) != size:
        raise SinkError(f"source {source} is {os.path.getsize(source)} bytes but the mirror is {size} bytes")
    report = ResyncReport()
    source_fd = open_image(source, writable=False)
    mirror_fd = open_image(mirror.image.path, writable=False)
    try:
        ranges = [*data_ranges(source_fd, 0, size), *data_ranges(mirror_fd, 0, size)]
        regions = union_aligned(ranges, bs, size)
        total = sum(end - start for start, end in regions)
        report.skipped_bytes = size - total
        for start, end in regions:
            for offset in range(start, end, CHUNK_BYTES):
                length = min(CHUNK_BYTES, end - offset)
                report.copied_blocks += _sync_chunk(mirror, pread_full(source_fd, length, offset, source), offset)
                report.scanned_bytes += length
                if on_progress is not None:
                    on_progress(report.scanned_bytes, total)
    finally:
        os.close(source_fd)
        os.close(mirror_fd)
    mirror.image.fsync()
    return report


def _sync_chunk(mirror: Mirror, theirs: bytes, offset: int) -> int:
    bs = mirror.block_size
    ours = mirror.image.pread(offset, len(theirs))
    first = offset // bs
    differ = [
        first + i
        for i in range(len(theirs) // bs)
        if xxhash.xxh3_64_digest(theirs[i * bs : (i + 1) * bs]) != xxhash.xxh3_64_digest(ours[i * bs : (i + 1) * bs])
    ]
    if not differ:
        return 0
    if mirror.progress.rp_id is not None:
        mirror.undo.save_pre_images(mirror.progress.rp_id, differ, mirror.read_blocks)
    for block, count in runs(differ):
        at = (block - first) * bs
        content = theirs[at : at + count * bs]
        if content.count(0) == len(content):
            mirror.image.zero(block * bs, count * bs)
        else:
            mirror.image.pwrite(block * bs, content)
    return len(differ)


def _record(mirror: Mirror, head: StreamHead | None, source: Path) -> None:
    """The mirror holds what the newest change set describes; the applier resumes after it."""
    state = mirror.progress
    if head is not None and head.changeset_id >= state.changeset_id:
        state.changeset_id, state.seq_last, state.sealed_at = head.changeset_id, head.seq_last, head.sealed_at
        state.partition, state.next_offset = head.partition, head.next_offset
        state.resynced_below = head.end
        # The mirror now holds that set's content: it follows its generation, so a set sealed under
        # an older primary is refused from here on (stream_applier.py), as for an applied set.
        state.generation = max(state.generation, head.generation)
        if head.rp_id is not None and state.point(head.rp_id) is None:
            state.rp_id = head.rp_id
            state.points.append(
                PointRecord(head.rp_id, head.changeset_id, head.seq_last, head.next_offset, head.sealed_at)
            )
    if head is None:  # no change set of the volume left: the applier re-reads from the start
        state.partition = state.next_offset = None
    at = f"change set {state.changeset_id}" if head is not None else "the start of the stream"
    state.state = REPLICATING
    state.message = f"resynced from {source} at {time.strftime('%Y-%m-%d %H:%M:%S')}; resumes after {at}"
    mirror.save()
