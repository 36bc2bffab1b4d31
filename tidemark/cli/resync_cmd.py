"""`tidemark resync`: copy only the differing blocks from a quiesced source into a mirror."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .context import app_context
from .mirror_options import DEFAULT_SITE, MirrorImage, MirrorSite, MirrorVolume
from .progress_bars import progress_bar

# Registered without a group name, so the command is `tidemark resync`.
app = typer.Typer(help="Resync a mirror from a source image.")


@app.command("resync")
def resync(
    ctx: typer.Context,
    volume: MirrorVolume,
    mirror: MirrorImage,
    source: Annotated[Path, typer.Option(help="the volume's image, quiesced (no writes during the resync)")],
    site: MirrorSite = DEFAULT_SITE,
) -> None:
    """Compare MIRROR with SOURCE per block (xxh3), copy the differing blocks, verify, and record
    the mirror at the newest change set of the volume so `tidemark mirror` resumes after it."""
    from tidemark.sinks.ops.resync import ResyncRequest, run_resync
    from tidemark.sinks.storage.private import private_umask

    private_umask()  # undo and state files private (sinks/storage/private.py)
    app_ctx = app_context(ctx)
    request = ResyncRequest(volume, mirror, source, site)
    with progress_bar("resync", "bytes") as on_progress:
        report = run_resync(app_ctx.clients, app_ctx.topics, app_ctx.settings.state_dir, request, on_progress)
    point = report.rp_id if report.rp_id is not None else "none"
    Console(soft_wrap=True).print(
        f"resynced {volume}: scanned {report.scanned_bytes} bytes (skipped {report.skipped_bytes} bytes of "
        f"holes), copied {report.copied_blocks} blocks; verified identical ({report.verified_blocks} "
        f"blocks); mirror now at change set {report.changeset_id}, recovery point {point}",
        highlight=False,
    )
