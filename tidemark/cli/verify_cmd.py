"""`tidemark verify`: compare a mirror with a source image or with recovery point manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .context import app_context
from .mirror_options import DEFAULT_SITE, MirrorImage, MirrorSite, MirrorVolume
from .progress_bars import progress_bar

# Registered without a group name, so the command is `tidemark verify`.
app = typer.Typer(help="Verify a mirror.")

MAX_LISTED = 50


@app.command("verify")
def verify(
    ctx: typer.Context,
    volume: MirrorVolume,
    mirror: MirrorImage,
    source: Annotated[Path | None, typer.Option(help="compare every block with this image")] = None,
    rp: Annotated[int | None, typer.Option(help="recovery point (default: the last one the mirror holds)")] = None,
    site: MirrorSite = DEFAULT_SITE,
    changed_only: Annotated[
        bool, typer.Option(help="with manifests: only the blocks changed since the parent point")
    ] = False,
) -> None:
    """Per-block xxh3 comparison; lists the differing extents and exits 3 on any difference."""
    from tidemark.sinks.ops.verify_run import VerifyRequest, run_verify

    app_ctx = app_context(ctx)
    request = VerifyRequest(volume, mirror, site, source, rp, changed_only)
    with progress_bar("verify") as on_progress:
        report = run_verify(app_ctx.clients, app_ctx.topics, app_ctx.settings.state_dir, request, on_progress)
    out = Console(soft_wrap=True)
    for note in report.notes:
        out.print(f"note: {note}", highlight=False)
    extents = report.extents()
    if report.identical:
        out.print(f"identical: {report.blocks_checked} blocks checked against {report.reference}", highlight=False)
        return
    out.print(
        f"DIFFERENT: {len(report.differing_blocks)} of {report.blocks_checked} blocks differ from "
        f"{report.reference}, in {len(extents)} extents:",
        highlight=False,
    )
    for offset, length in extents[:MAX_LISTED]:
        out.print(f"  offset {offset} length {length}", highlight=False)
    if len(extents) > MAX_LISTED:
        out.print(f"  ... and {len(extents) - MAX_LISTED} more", highlight=False)
    raise typer.Exit(3)
