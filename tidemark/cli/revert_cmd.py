"""`tidemark revert`: bring a stopped mirror back to a retained recovery point."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from .context import app_context
from .mirror_options import DEFAULT_SITE, MirrorImage, MirrorSite, MirrorVolume
from .progress_bars import progress_bar

# Registered without a group name, so the command is `tidemark revert`.
app = typer.Typer(help="Revert a mirror to a recovery point.")


@app.command("revert")
def revert(
    ctx: typer.Context,
    volume: MirrorVolume,
    mirror: MirrorImage,
    to: Annotated[int, typer.Option("--to", help="recovery point id (see `tidemark rp list`)")],
    site: MirrorSite = DEFAULT_SITE,
) -> None:
    """Rewrite only the blocks changed since the point; the mirror then resumes from there."""
    from tidemark.sinks.layout import MirrorLayout
    from tidemark.sinks.ops.revert import revert_mirror
    from tidemark.sinks.storage import progress as progress_file
    from tidemark.sinks.storage.private import private_umask

    from .mirror_state import publish_mirror_state

    private_umask()  # undo and state files private (sinks/storage/private.py)
    app_ctx = app_context(ctx)
    with progress_bar("revert") as on_progress:
        report = revert_mirror(app_ctx.settings.state_dir, site, volume, mirror, to, on_progress)
    out = Console(soft_wrap=True, highlight=False)
    # The mirror no longer holds the points after rp_id: say so, or `rp list` lists them as held.
    state = progress_file.load(MirrorLayout.of(app_ctx.settings.state_dir, site, volume).progress)
    if state is not None:
        publish_mirror_state(app_ctx, state, out)
    out.print(
        f"reverted {volume} (site {site}) to recovery point {report.rp_id}: "
        f"rewrote {report.blocks} blocks ({report.bytes} bytes)"
    )
