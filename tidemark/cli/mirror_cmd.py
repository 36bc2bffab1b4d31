"""`tidemark mirror`: apply a volume's change sets to a mirror until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .context import app_context
from .metrics_option import MetricsPort

# Registered without a group name, so the command is `tidemark mirror`.
app = typer.Typer(help="Apply change sets to a mirror.")


@app.command("mirror")
def mirror(
    ctx: typer.Context,
    volume: Annotated[str, typer.Option(help="registered volume to mirror")],
    path: Annotated[Path, typer.Option(help="mirror image (created sparse, the volume's size)")],
    site: Annotated[str, typer.Option(help="site name: each site is its own consumer group")] = "default",
    retain: Annotated[
        Optional[str], typer.Option(help="keep the newest N recovery points, or those younger than 24h/7d")
    ] = None,
    until_rp: Annotated[Optional[int], typer.Option(help="exit once this recovery point is held")] = None,
    exit_when_idle: Annotated[
        Optional[float], typer.Option(help="exit after this many seconds at the end of the stream")
    ] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Consume change sets of VOLUME and apply them to PATH (runs until SIGINT/SIGTERM)."""
    from tidemark.sinks.applier import Applier, ApplierOptions
    from tidemark.core.metrics import serve_metrics
    from tidemark.sinks.retention import parse_retain

    app_ctx = app_context(ctx)
    serve_metrics(metrics_port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = ApplierOptions(volume, path, site, parse_retain(retain), until_rp, exit_when_idle)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    summary = Applier(app_ctx.clients, app_ctx.topics, app_ctx.settings.state_dir, options).run(stop)
    Console(soft_wrap=True).print(
        f"mirror of {volume} at site {site}: applied {summary.changesets} change sets "
        f"({summary.bytes} bytes), now at change set {summary.changeset_id}, recovery point "
        f"{summary.rp_id if summary.rp_id is not None else 'none'}; dead letters {summary.dead_letters}"
        + (f"; expired points {summary.expired}" if summary.expired else ""),
        highlight=False,
    )
