"""`tidemark process`: the stream processor (change sets, recovery points, metrics)."""

from __future__ import annotations

import logging
import socket
from typing import Annotated

import typer

from tidemark.core.metrics import serve_metrics
from tidemark.core.names import validate_name
from tidemark.processors.fold_volume import FoldOptions
from tidemark.processors.recent_writes import DEFAULT_CACHE_BYTES
from tidemark.processors.runner import ProcessorOptions, ProcessorWorker

from .context import app_context
from .metrics_option import MetricsPort


def process(
    ctx: typer.Context,
    subinterval: Annotated[
        float, typer.Option(help="seconds between change-set seals: how long a write may wait to ship")
    ] = FoldOptions.subinterval,
    rp_interval: Annotated[
        float, typer.Option(help="seconds between periodic recovery points")
    ] = FoldOptions.rp_interval,
    metrics_interval: Annotated[
        float, typer.Option(help="seconds per VolumeMetrics window")
    ] = FoldOptions.metrics_interval,
    subinterval_max_mib: Annotated[
        int, typer.Option(help="seal early when a sub-interval holds this much")
    ] = FoldOptions.subinterval_max_bytes >> 20,
    tick_interval: Annotated[
        float, typer.Option(help="seconds between ticks that close idle sub-intervals; 0 disables")
    ] = ProcessorOptions.tick_interval,
    worker_id: Annotated[
        str | None,
        typer.Option(
            envvar="TIDEMARK_WORKER_ID",
            help="stable id of this worker (default: the host name); a restart with the same id "
            "fences the crashed one, so two workers on one host need distinct ids",
        ),
    ] = None,
    write_cache_mib: Annotated[
        int,
        typer.Option(
            help="memory for recent writes; a seal reads what is not there back from the journal",
        ),
    ] = DEFAULT_CACHE_BYTES >> 20,
    loglevel: Annotated[
        str, typer.Option(help="debug, info, warning or error (info: a line per partition assigned and restored)")
    ] = "info",
    metrics_port: MetricsPort = None,
) -> None:
    """Fold the writes journal into change sets and recovery points, exactly once (run several)."""
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app_ctx = app_context(ctx)
    serve_metrics(metrics_port)
    fold = FoldOptions(
        subinterval=subinterval,
        rp_interval=rp_interval,
        metrics_interval=metrics_interval,
        subinterval_max_bytes=subinterval_max_mib << 20,
        extent_bytes=app_ctx.settings.extent_bytes,
    )
    options = ProcessorOptions(
        fold=fold,
        tick_interval=tick_interval,
        worker_id=validate_name(worker_id or socket.gethostname(), "worker"),
        write_cache_bytes=write_cache_mib << 20,
    )
    worker = ProcessorWorker(app_ctx.clients, options)
    worker.install_signal_handlers()
    worker.run()
