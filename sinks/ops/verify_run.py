"""Chooses what `tidemark verify` compares, opens the mirror accordingly and runs the comparison."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tidemark.core.kafka import KafkaClients
from tidemark.core.progress import OnProgress
from tidemark.core.topics import Topics
from tidemark.core.volumes import DEFAULT_BLOCK_SIZE

from ..exceptions import MirrorStateError, UnknownRecoveryPointError
from ..layout import DEFAULT_SITE, MirrorLayout, exclusive
from ..manifests import point_chunks, point_locations
from ..mirror import Mirror
from ..storage import progress as progress_file
from ..storage.mirror_file import MirrorFile
from ..storage.pins import pinned
from ..storage.progress import RESYNC_NEEDED
from ..verify import (
    VerifyReport,
    against_manifests,
    against_source,
    manifest_chain,
)


@dataclass(frozen=True)
class VerifyRequest:
    volume: str
    mirror: Path
    site: str = DEFAULT_SITE
    source: Path | None = None
    rp: int | None = None
    changed_only: bool = False


def run_verify(
    clients: KafkaClients,
    topics: Topics,
    state_dir: Path,
    request: VerifyRequest,
    on_progress: OnProgress | None = None,
) -> VerifyReport:
    layout = MirrorLayout.of(state_dir, request.site, request.volume)
    if request.rp is None and request.source is not None:
        report = _current_against_source(layout, request, on_progress)
        state = progress_file.load(layout.progress)
        if state is not None:
            _note_gap(report, state)
        return report
    with exclusive(layout, "verify"), Mirror.open_existing(layout, request.mirror) as mirror:
        rp = request.rp if request.rp is not None else mirror.progress.rp_id
        if rp is None:
            raise MirrorStateError(
                f"the mirror of volume {request.volume!r} holds no recovery point yet; "
                "compare it with --source, or wait for a recovery point"
            )
        with pinned(layout.root, rp, "verify"):
            report = _verify_point(clients, topics, mirror, request, rp, on_progress)
        _note_gap(report, mirror.progress)
        return report


def _note_gap(report: VerifyReport, state: progress_file.Progress) -> None:
    """A mirror stopped at a gap says so, whatever the comparison found."""
    if state.state == RESYNC_NEEDED:
        report.notes.append(f"GAP: {state.message}; run `tidemark resync` to repair the mirror")


def _verify_point(
    clients: KafkaClients,
    topics: Topics,
    mirror: Mirror,
    request: VerifyRequest,
    rp: int,
    on_progress: OnProgress | None,
) -> VerifyReport:
    view = mirror.view(rp)
    if request.source is not None:
        report = against_source(view, request.source, mirror.block_size, on_progress)
        report.reference += f" (mirror at recovery point {rp})"
        return report
    locations = point_locations(clients, topics, request.volume)
    headers = {rp_id: location.header for rp_id, location in locations.items()}
    chain, notes = manifest_chain(headers, rp, request.changed_only)
    if not chain:
        raise UnknownRecoveryPointError(
            f"no manifest of recovery point {rp} of volume {request.volume!r} in "
            f"{topics.recovery_points}; verify against --source instead"
        )
    streams = [(header, point_chunks(clients, topics, request.volume, locations[header["rp_id"]])) for header in chain]
    report = against_manifests(view.read_block, streams, mirror.block_size, on_progress)
    report.notes += notes
    return report


def _current_against_source(
    layout: MirrorLayout, request: VerifyRequest, on_progress: OnProgress | None
) -> VerifyReport:
    """The mirror file as it is now, block by block; needs no state and no lock."""
    state = progress_file.load(layout.progress)
    block_size = state.block_size if state is not None else DEFAULT_BLOCK_SIZE
    size = os.path.getsize(request.mirror)
    with MirrorFile(request.mirror, size, create=False, writable=False) as image:
        return against_source(image, request.source, block_size, on_progress)  # type: ignore[arg-type]
