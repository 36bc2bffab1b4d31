"""`tidemark replay`: publish the writes of a real block trace through a tracker."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tidemark.core.names import validate_name

from .compression_option import Compression, CompressionOption
from .context import app_context
from .metrics_option import MetricsPort
from .stats_view import stats_table

# Registered without a group name (`app.add_typer(replay_cmd.app)`), so the command is `tidemark replay`.
app = typer.Typer(help="Replay a block I/O trace through a tracker.")


class TraceFormat(StrEnum):
    msr = "msr"
    systor = "systor"
    disksim = "disksim"


def parse_speed(value: str) -> float | None:
    """`max` (as fast as possible) or a positive factor of real time."""
    if value.strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a factor (1, 10, 0.5) nor max") from None
    if not speed > 0 or speed == float("inf"):
        raise typer.BadParameter(f"speed {value!r} must be a positive factor, or max")
    return speed


@app.command("replay")
def replay(
    ctx: typer.Context,
    trace: Annotated[Path, typer.Argument(help="trace file", exists=True, dir_okay=False, readable=True)],
    format: Annotated[TraceFormat, typer.Option("--format", help="trace format (see shared/traces/README.md)")],
    volume: Annotated[str, typer.Option(help="registered volume to publish the writes to")],
    image: Annotated[
        Path | None, typer.Option(help="also apply the writes to this raw image (exactly the volume's size)")
    ] = None,
    speed: Annotated[
        str, typer.Option(help="1 = the trace's real time, 10 = ten times faster, max = no waiting")
    ] = "max",
    seed: Annotated[int, typer.Option(help="seed of the generated write content")] = 0,
    compression: CompressionOption = Compression.NONE,
    metrics_port: MetricsPort = None,
) -> None:
    """Replay TRACE: reads are skipped, writes get generated content and are mapped into the volume."""
    from tidemark.core.metrics import serve_metrics
    from tidemark.producers.replay import replay as run_replay
    from tidemark.producers.traces import read_trace
    from tidemark.producers.tracker import open_tracker

    factor = parse_speed(speed)
    app_ctx = app_context(ctx)
    validate_name(volume)
    serve_metrics(metrics_port)
    records = read_trace(trace, format.value)
    with open_tracker(app_ctx.settings, app_ctx.clients, app_ctx.topics, volume, image, compression) as tracker:
        stats = run_replay(
            tracker,
            records,
            image=image,
            speed=factor,
            seed=seed,
            max_extent=app_ctx.settings.extent_bytes,
        )
    Console(highlight=False).print(stats_table(f"replay of {trace.name} into volume {volume}", stats.as_dict()))
