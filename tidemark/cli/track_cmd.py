"""`tidemark track nbd`: trackers that sit in front of a disk and publish every write."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .compression_option import Compression, CompressionOption
from .context import app_context
from .metrics_option import MetricsPort
from .nbd_server_options import NbdServerFlags, nbd_server_flags
from .track_scan_cmd import scan

app = typer.Typer(help="Track a volume's writes and publish them to Kafka.", no_args_is_help=True)
console = Console(stderr=True, highlight=False, soft_wrap=True)


class Ack(StrEnum):
    local = "local"
    kafka = "kafka"


@app.command()
@nbd_server_flags
def nbd(
    ctx: typer.Context,
    volume: Annotated[str, typer.Option(help="registered volume to track; also the NBD export name")],
    image: Annotated[Path, typer.Option(help="raw image file of exactly the volume's size")],
    compression: CompressionOption = Compression.NONE,
    delivery_timeout_ms: Annotated[
        int | None,
        typer.Option(
            min=1000,
            help="how long events sent to Kafka may go without any confirmation before the link counts "
            "as lost and their blocks are recorded as dirty (resynced when Kafka is back) [default 10000]",
        ),
    ] = None,
    ack: Annotated[
        Ack,
        typer.Option(
            help="local: acknowledge once the write is in the image and covered by the durable activity "
            "log, publish asynchronously (like DRBD protocol A); kafka: acknowledge once Kafka has it "
            "(like DRBD protocol C, slower)"
        ),
    ] = Ack.local,
    unshipped_max_mib: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="pull-ahead bound: past this many MiB not yet on Kafka, writes are only marked dirty and "
            "drained from the image later; they are held in memory until then [default 128]",
        ),
    ] = None,
    drain_min_mib_s: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="while the tracker is ahead and the client writes faster than this many MiB/s, the drain "
            "of the dirty blocks ships this much a second and leaves the machine to the client (DRBD's "
            "c-min-rate); at full speed once the client slows down, or after 30 s of writing that fast "
            "[default 8]",
        ),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option(
            help="the site this tracker runs at; it must be the volume's primary site in the registry, and "
            "writes are refused once the registry names another site or a newer generation "
            "[default: the registry's current primary]"
        ),
    ] = None,
    offline_start: Annotated[
        bool,
        typer.Option(
            "--offline-start",
            help="when Kafka does not answer at start, start anyway as the primary the registry record of the "
            "last start names (kept in the state directory), recording writes as dirty until Kafka answers; "
            "refuses writes from then on if a failover happened meanwhile. Only when you know the cluster is "
            "down, not this host cut off from a cluster that may have failed over (split brain)",
        ),
    ] = False,
    metrics_port: MetricsPort = None,
    read_profile_blocks: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="record the first blocks read after each client connects, up to this many, for `tidemark "
            "restore` to copy first (0: none) [default 16384]",
        ),
    ] = None,
    native_writes: Annotated[
        bool,
        typer.Option(
            help="with --ack local, serve runs of plain aligned writes of up to 64 KiB in C when the extension "
            "was built (the log line at start says which); --no-native-writes serves every request in Python, "
            "with the same results",
        ),
    ] = True,
    *,
    server: NbdServerFlags,
) -> None:
    """Serve IMAGE over NBD and publish every write, trim and flush of its clients until SIGINT/SIGTERM."""
    from tidemark.core.metrics import serve_metrics
    from tidemark.core.settings import MIB
    from tidemark.producers.nbd.server import serve_nbd
    from tidemark.producers.read_profile import recorded
    from tidemark.producers.tracker import open_tracker

    serve_metrics(metrics_port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready(bound_host: str, bound_port: int) -> None:
        console.print(f"tracking volume {volume!r}: {server.url(bound_host, bound_port, volume)} (Ctrl-C to stop)")

    unshipped_max_bytes = unshipped_max_mib * MIB if unshipped_max_mib else None
    app = app_context(ctx)
    with (
        open_tracker(
            app.settings,
            app.clients,
            app.topics,
            volume,
            image,
            compression.value,
            delivery_timeout_ms,
            ack.value,
            unshipped_max_bytes,
            site,
            drain_min_mib_s * MIB if drain_min_mib_s else None,
            offline_start,
        ) as tracker,
        recorded(app.clients, app.topics, volume, tracker.block_size, read_profile_blocks) as profile,
    ):
        host, port = server.address
        serve_nbd(
            tracker,
            image,
            host,
            port,
            ready=ready,
            options=server.options,
            profile=profile,
            native_writes=native_writes,
        )


app.command("scan")(scan)
