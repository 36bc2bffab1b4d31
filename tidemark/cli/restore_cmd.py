"""`tidemark restore`: serve a recovery point at once while it moves into a destination image.

The NBD export answers from the point (the mirror and its undo data, as `tidemark mount`) for the
blocks not relocated yet and from the destination for the others; the client's writes go to the
destination. A background copier relocates the point's data blocks meanwhile, yielding to client
requests. Rerun the same command after a crash: it resumes from the destination's durable
relocation bitmap. With `--protect`, once complete, a tracker serves the destination as the
volume's new primary (the NBD clients reconnect to it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from .context import AppContext, app_context
from .metrics_option import MetricsPort
from .mirror_options import DEFAULT_SITE, MirrorSite, ServedMirrorVolume
from .nbd_server_options import NbdServerFlags, nbd_server_flags

if TYPE_CHECKING:
    from pyroaring import BitMap

    from tidemark.sinks.restore.copier import FirstBlocks

# Registered without a group name, so the command is `tidemark restore`.
app = typer.Typer(help="Restore a recovery point instantly, relocating it in the background.")


@app.command("restore")
@nbd_server_flags
def restore(
    ctx: typer.Context,
    volume: ServedMirrorVolume,
    rp: Annotated[int, typer.Option(help="recovery point to restore")],
    to: Annotated[Path, typer.Option("--to", help="destination image: a new file, or this restore's, to resume")],
    site: MirrorSite = DEFAULT_SITE,
    protect: Annotated[
        bool,
        typer.Option(
            help="once relocated, make the destination the volume's primary (a new generation) and serve it "
            "through a tracker, so protection resumes at once"
        ),
    ] = False,
    protect_site: Annotated[
        str | None,
        typer.Option(
            help="with --protect: the site the destination is primary at (not the mirror's --site, whose "
            "applier must go on) [default: the volume's current primary site]"
        ),
    ] = None,
    read_profile: Annotated[
        bool,
        typer.Option(help="copy the blocks of the volume's read profile (recorded by its tracker) first"),
    ] = True,
    max_rate: Annotated[
        float | None,
        typer.Option(min=0.01, help="cap on the relocation's reads of the point, in MiB/s [default: no cap]"),
    ] = None,
    metrics_port: MetricsPort = None,
    *,
    server: NbdServerFlags,
) -> None:
    """Serve point RP of VOLUME over NBD now, and relocate it into TO while clients use it."""
    from tidemark.core.metrics import serve_metrics
    from tidemark.core.nbd.export import ThreadedExport
    from tidemark.core.nbd.server import serve_export
    from tidemark.core.settings import MIB
    from tidemark.sinks.restore.copier import CopyOptions
    from tidemark.sinks.restore.session import RestoreRequest, restoring

    app_ctx = app_context(ctx)
    serve_metrics(metrics_port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Console(soft_wrap=True, highlight=False)
    request = RestoreRequest(volume, rp, to, site)
    columns = (TextColumn("relocating"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    copy = CopyOptions(max_bytes_per_second=None if max_rate is None else max_rate * MIB)
    first = _profile_of(app_ctx, volume) if read_profile else None
    with restoring(app_ctx.settings.state_dir, request, copy, need_point=protect, first=first) as session:
        bs = session.record.block_size

        def ready(bound_host: str, bound_port: int) -> None:
            state = "relocated already" if session.done.is_set() else f"relocating into {to}"
            where = server.url(bound_host, bound_port, volume)
            out.print(f"serving recovery point {rp} of {volume!r} ({state}): {where} (Ctrl-C to stop)")

        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("relocate", total=session.pending_blocks * bs)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done * bs, total=total * bs)

            def started(stop: Callable[[], None]) -> None:
                """Relocate meanwhile; with --protect, stop serving once the relocation is complete."""

                def finished() -> None:
                    out.print(
                        f"relocation complete: {to} is recovery point {rp} of {volume!r} plus the clients' "
                        "writes, a standalone image" + ("; handing it to a tracker" if protect else "")
                    )
                    if protect:
                        stop()

                session.start(progress, finished)

            host, port = server.address
            serve_export(ThreadedExport(session.export), host, port, ready=ready, options=server.options,
                         started=started)  # fmt: skip
        if session.error is not None:
            raise session.error
        diverged = session.diverged_blocks() if protect and session.done.is_set() else None
    if diverged is None:
        return
    from .restore_protect import protect as run_protect

    def tracked(bound_host: str, bound_port: int) -> None:
        out.print(f"protecting {to} as the primary of volume {volume!r}: {server.url(bound_host, bound_port, volume)}")

    run_protect(app_ctx, volume, to, protect_site, diverged, server.address, tracked, server.options)


def _profile_of(app: AppContext, volume: str) -> FirstBlocks:
    """The volume's read profile, looked up when the copier starts (Kafka may be slow or away)."""

    def lookup() -> BitMap | None:
        from tidemark.core.volumes import lookup_volume
        from tidemark.sinks.restore.profile import latest_profile

        try:
            block_size = lookup_volume(app.clients, app.topics, volume).block_size
        except Exception as exc:  # noqa: BLE001  (the restore goes on in block order)
            logging.getLogger(__name__).warning("volume %s: no registry record (%s), no read profile", volume, exc)
            return None
        found: BitMap | None = latest_profile(app.clients, app.topics, volume, block_size)
        return found

    return lookup
