"""`tidemark mirror`: apply the change sets of one or many volumes to their mirrors until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .context import app_context
from .metrics_option import MetricsPort
from .mirror_options import DEFAULT_SITE

# Registered without a group name, so the command is `tidemark mirror`.
app = typer.Typer(help="Apply change sets to mirrors.")


def _targets(volumes: list[str], path: Path | None, folder: Path | None, every: bool) -> dict[str, Path]:
    """volume -> mirror image, from the flags (the registry is read later for --all)."""
    if every:
        if volumes or path is not None:
            raise typer.BadParameter("--all serves every registered volume: give --dir, not --volume or --path")
        if folder is None:
            raise typer.BadParameter("--all needs --dir D: each volume's mirror is D/<volume>.img")
        return {}
    if not volumes:
        raise typer.BadParameter("give --volume V (repeat it for several volumes) or --all")
    if path is not None and folder is not None:
        raise typer.BadParameter("give --path (one volume) or --dir (any number), not both")
    if path is not None:
        if len(volumes) > 1:
            raise typer.BadParameter("--path names one mirror: with several --volume give --dir D instead")
        return {volumes[0]: path}
    if folder is None:
        raise typer.BadParameter("give --path P for one volume, or --dir D (mirrors at D/<volume>.img)")
    from tidemark.sinks.apply.applier import mirror_path_in

    return {volume: mirror_path_in(folder, volume) for volume in volumes}


@app.command("mirror")
def mirror(
    ctx: typer.Context,
    volume: Annotated[list[str] | None, typer.Option(help="registered volume to mirror; repeat for several")] = None,
    path: Annotated[
        Path | None, typer.Option(help="mirror image of the one --volume (created sparse, the volume's size)")
    ] = None,
    folder: Annotated[
        Path | None, typer.Option("--dir", help="folder of the mirrors: each volume's is DIR/<volume>.img")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="every volume in the registry (and those registered later); needs --dir")
    ] = False,
    site: Annotated[str, typer.Option(help="site name: each site is one consumer group")] = DEFAULT_SITE,
    retain: Annotated[
        str | None, typer.Option(help="keep the newest N recovery points, or those younger than 24h/7d")
    ] = None,
    until_rp: Annotated[
        int | None, typer.Option(help="exit once every mirrored volume holds this recovery point")
    ] = None,
    exit_when_idle: Annotated[
        float | None, typer.Option(help="exit after this many seconds at the end of the stream")
    ] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Consume change sets and apply them to mirrors (runs until SIGINT/SIGTERM).

    One process serves many volumes, reading each change-set partition once:
    `--volume V --path P` (one volume), `--volume A --volume B --dir D` (mirrors D/A.img, D/B.img),
    or `--all --dir D` (every registered volume, joined as they are registered).
    """
    from tidemark.core.metrics import serve_metrics
    from tidemark.sinks.apply.applier import SiteApplier, SiteOptions
    from tidemark.sinks.storage.retention import parse_retain

    targets = _targets(volume or [], path, folder, every)
    from tidemark.sinks.storage.private import private_umask

    private_umask()  # undo and state files private (sinks/storage/private.py)
    app_ctx = app_context(ctx)
    serve_metrics(metrics_port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = SiteOptions(
        targets, site, parse_retain(retain), until_rp, exit_when_idle, all_in=folder if every else None
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    applier = SiteApplier(app_ctx.clients, app_ctx.topics, app_ctx.settings.state_dir, options)
    summaries = applier.run(stop)
    console = Console(soft_wrap=True)
    for name, summary in sorted(summaries.items()):
        left_out = applier.errors.get(name)
        console.print(
            f"mirror of {name} at site {site}: applied {summary.changesets} change sets "
            f"({summary.bytes} bytes), now at change set {summary.changeset_id}, recovery point "
            f"{summary.rp_id if summary.rp_id is not None else 'none'}; dead letters {summary.dead_letters}"
            + (f"; expired points {summary.expired}" if summary.expired else "")
            + (f"; NOT MIRRORED: {left_out}" if left_out is not None else ""),
            highlight=False,
        )
