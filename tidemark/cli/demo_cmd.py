"""`tidemark demo`: protect a real ext4 filesystem end to end and prove it comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .context import app_context

# Registered without a group name, so the command is `tidemark demo`.
app = typer.Typer(help="Run the whole pipeline on a real filesystem, with checks.")


@app.command("demo")
def demo(
    ctx: typer.Context,
    trace: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            envvar="TIDEMARK_DEMO_TRACE",
            help="block trace replayed into the second volume [default: a generated one]",
        ),
    ] = None,
    trace_format: Annotated[str, typer.Option(help="format of --trace: msr, systor or disksim")] = "msr",
    size_mib: Annotated[int, typer.Option(min=16, max=4096, help="size of the filesystem volume")] = 64,
    keep: Annotated[bool, typer.Option(help="keep the run's topics and work folder after a pass")] = False,
    wait: Annotated[float, typer.Option(help="seconds a step may wait for the pipeline")] = 120.0,
) -> None:
    """Broker (started if none is configured), topics, volumes, tracker, processor, mirrors;
    seed an ext4 image, replay a trace, change files, cut recovery points; verify, mount, test
    failover and revert, each checked. Exits 1 if any check failed; stops everything it started."""
    from tidemark.demo.environment import DemoOptions
    from tidemark.demo.run import run_demo

    app_ctx = app_context(ctx)
    trace = trace.resolve() if trace is not None else None
    options = DemoOptions(size_mib=size_mib, trace=trace, trace_format=trace_format, keep=keep, wait_s=wait)
    report = run_demo(app_ctx.settings, app_ctx.kafka, options, Console(highlight=False))
    if not report.passed:
        raise typer.Exit(1)
