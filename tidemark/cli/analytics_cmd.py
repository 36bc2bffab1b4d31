"""`tidemark analytics`: the faust app that watches the journal (encryption early warning, hot
regions, lag) and serves the dashboard, its JSON and /metrics."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from .context import app_context

# Registered without a group name, so the command is `tidemark analytics`.
app = typer.Typer(help="Stream analytics on the journal, alerts and the live dashboard.")


@app.command("analytics")
def analytics(
    ctx: typer.Context,
    web_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="dashboard port [env TIDEMARK_ANALYTICS_WEB_PORT]")
    ] = None,
    web_bind: Annotated[str | None, typer.Option(help="dashboard address [env TIDEMARK_ANALYTICS_WEB_BIND]")] = None,
    loglevel: Annotated[str, typer.Option(help="debug, info, warning or error")] = "warning",
) -> None:
    """Windowed write figures per volume, ENCRYPTION_SUSPECTED / RPO_LAG_HIGH / MIRROR_RESYNC_NEEDED /
    DEAD_LETTERS alerts on <prefix>.alerts, and the dashboard at http://BIND:PORT/ (runs until stopped)."""
    import faust

    from tidemark.analytics.app import build_app, prepare_topics
    from tidemark.analytics.settings import AnalyticsSettings

    overrides = {k: v for k, v in {"web_port": web_port, "web_bind": web_bind}.items() if v is not None}
    settings = AnalyticsSettings(**overrides)  # type: ignore[arg-type]
    app_ctx = app_context(ctx)
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    inputs = prepare_topics(app_ctx.clients, app_ctx.topics, app_ctx.settings)
    datadir = app_ctx.settings.state_dir / "analytics"
    datadir.mkdir(parents=True, exist_ok=True)
    faust_app, _ = build_app(settings, app_ctx.topics, inputs, app_ctx.clients, datadir)
    typer.echo(f"dashboard: http://{settings.web_bind}:{settings.web_port}/", err=False)
    worker = faust.Worker(faust_app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
