"""`tidemark track scan`: publish the blocks of an image whose checksum changed, pass after pass."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tidemark.core.names import validate_name

from .compression_option import Compression, CompressionOption
from .context import app_context
from .metrics_option import MetricsPort
from .stats_view import stats_table


def scan(
    ctx: typer.Context,
    volume: Annotated[str, typer.Option(help="registered volume the image belongs to")],
    image: Annotated[Path, typer.Option(help="raw image file of exactly the volume's size (read only)")],
    interval: Annotated[
        float | None, typer.Option(help="seconds between passes; without it, one pass and exit")
    ] = None,
    latency_threshold_ms: Annotated[
        float, typer.Option(help="back off while the average read latency exceeds this (0: never back off)")
    ] = 20.0,
    chunk_bytes: Annotated[int, typer.Option(help="bytes read per request")] = 4 * 1024 * 1024,
    compression: CompressionOption = Compression.NONE,
    metrics_port: MetricsPort = None,
) -> None:
    """Scan IMAGE and publish changed blocks: the first pass seeds, later ones send only changes.

    SIGINT/SIGTERM end the scan cleanly after the current chunk.
    """
    from tidemark.core.metrics import serve_metrics
    from tidemark.producers.scan import Scanner, ScanOptions, scan_forever
    from tidemark.producers.tracker import open_tracker

    if interval is not None and interval < 0:
        raise typer.BadParameter("--interval must not be negative")
    if chunk_bytes <= 0:
        raise typer.BadParameter("--chunk-bytes must be positive")
    app_ctx = app_context(ctx)
    validate_name(volume)
    serve_metrics(metrics_port)
    options = ScanOptions(
        chunk_bytes=chunk_bytes,
        max_extent_bytes=app_ctx.settings.extent_bytes,
        latency_threshold_ms=latency_threshold_ms if latency_threshold_ms > 0 else None,
    )
    state = app_ctx.settings.volume_state_dir("scan", volume)
    console = Console(highlight=False)
    stop = threading.Event()
    with (
        _stop_on_signals(stop),
        open_tracker(app_ctx.settings, app_ctx.clients, app_ctx.topics, volume, image, compression) as tracker,
        Scanner(tracker, image, state, options) as scanner,
    ):
        scan_forever(
            scanner,
            interval,
            stop,
            lambda stats: console.print(stats_table(f"scan of volume {volume}", stats.as_dict())),
        )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` instead of interrupting a chunk half-published."""
    handler = lambda *_: stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
