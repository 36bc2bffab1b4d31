"""`tidemark revert`: bring a stopped mirror back to a retained recovery point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .context import app_context

# Registered without a group name, so the command is `tidemark revert`.
app = typer.Typer(help="Revert a mirror to a recovery point.")


@app.command("revert")
def revert(
    ctx: typer.Context,
    volume: Annotated[str, typer.Option(help="volume of the mirror")],
    mirror: Annotated[Path, typer.Option(help="mirror image (as given to `tidemark mirror --path`)")],
    to: Annotated[int, typer.Option("--to", help="recovery point id (see `tidemark rp list`)")],
    site: Annotated[str, typer.Option(help="site of the mirror")] = "default",
) -> None:
    """Rewrite only the blocks changed since the point; the mirror then resumes from there."""
    from tidemark.sinks.layout import MirrorLayout
    from tidemark.sinks.ops.revert import revert_mirror
    from tidemark.sinks.storage import progress as progress_file
    from tidemark.sinks.storage.private import private_umask

    from .failover_cmd import publish_mirror_state

    private_umask()  # undo and state files private (sinks/storage/private.py)
    app_ctx = app_context(ctx)
    console = Console(stderr=True)
    columns = (TextColumn("revert"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("revert", total=None)
        report = revert_mirror(
            app_ctx.settings.state_dir, site, volume, mirror, to,
            lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    out = Console(soft_wrap=True, highlight=False)
    # The mirror no longer holds the points after rp_id: say so, or `rp list` lists them as held.
    state = progress_file.load(MirrorLayout.of(app_ctx.settings.state_dir, site, volume).progress)
    if state is not None:
        publish_mirror_state(app_ctx, state, out)
    out.print(
        f"reverted {volume} (site {site}) to recovery point {report.rp_id}: "
        f"rewrote {report.blocks} blocks ({report.bytes} bytes)"
    )
