"""`tidemark mount`: serve a recovery point (or a promoted mirror) as an NBD export.

The server's limits and TLS come from flags that fill `ServerOptions` (tidemark/core/nbd/limits.py,
where their defaults live); `--listen unix:PATH` serves on a unix socket.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .context import app_context
from .mirror_options import DEFAULT_SITE, MirrorSite, ServedMirrorVolume
from .nbd_server_options import NbdServerFlags, nbd_server_flags

# Registered without a group name, so the command is `tidemark mount`.
app = typer.Typer(help="Serve a recovery point over NBD.")


@app.command("mount")
@nbd_server_flags
def mount(
    ctx: typer.Context,
    volume: ServedMirrorVolume,
    rp: Annotated[
        int | None,
        typer.Option(help="recovery point to serve; omit on a failed-over mirror to serve the promoted volume"),
    ] = None,
    site: MirrorSite = DEFAULT_SITE,
    writable: Annotated[
        bool, typer.Option(help="accept writes into a copy-on-write overlay (the mirror is never written)")
    ] = False,
    overlay: Annotated[
        Path | None, typer.Option(help="overlay file for --writable [default: under the state directory]")
    ] = None,
    *,
    server: NbdServerFlags,
) -> None:
    """Serve the point straight from the mirror and its undo data, while the applier may go on."""
    from tidemark.core.nbd.export import ThreadedExport
    from tidemark.core.nbd.server import serve_export
    from tidemark.sinks.mount.serve import MountRequest, mounted

    app_ctx = app_context(ctx)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(soft_wrap=True, highlight=False)
    request = MountRequest(volume, rp, site, writable, overlay)
    what = f"recovery point {rp}" if rp is not None else "the promoted volume (read-write, tracked for failback)"
    mode = "" if rp is None else (" with a copy-on-write overlay" if writable else " read-only")

    def ready(bound_host: str, bound_port: int) -> None:
        url = server.url(bound_host, bound_port, volume)
        console.print(f"serving {what} of {volume!r}{mode}: {url} (Ctrl-C to stop)")

    with mounted(app_ctx.settings.state_dir, request) as backend:
        host, port = server.address
        serve_export(ThreadedExport(backend), host, port, ready=ready, options=server.options)
