"""`tidemark failover`, `failback` and `rejoin`: promote a mirror, resynchronise the old primary, or
make the old primary a mirror of the new one (after `failover --reverse`)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .context import AppContext, app_context
from .mirror_options import DEFAULT_SITE, MirrorImage, MirrorSite, MirrorVolume
from .nbd_server_options import parse_listen
from .progress_bars import progress_bar

# Registered without a group name: the commands are `tidemark failover` and `tidemark failback`.
app = typer.Typer(help="Fail over to a mirror and back.")


@app.command("failover")
def failover(
    ctx: typer.Context,
    volume: MirrorVolume,
    mirror: MirrorImage,
    to: Annotated[int | None, typer.Option("--to", help="recovery point [default: the last complete one]")] = None,
    site: MirrorSite = DEFAULT_SITE,
    stop_applier: Annotated[
        bool,
        typer.Option(help="ask a running `tidemark mirror` to let go of this mirror (it goes on with its others)"),
    ] = False,
    test: Annotated[
        bool, typer.Option(help="do not promote: serve a writable overlay of the point, replication goes on")
    ] = False,
    listen: Annotated[str, typer.Option(help="with --test: host:port of the NBD export")] = "127.0.0.1:10809",
    overlay: Annotated[Path | None, typer.Option(help="with --test: overlay file")] = None,
    reverse: Annotated[
        bool,
        typer.Option(
            help="protect the promoted copy at once: a tracker serves it under the new generation "
            "(the old primary rejoins as a mirror with `tidemark rejoin`)"
        ),
    ] = False,
    track_listen: Annotated[
        str | None, typer.Option(help="with --reverse: run the tracker on this host:port (else print its command)")
    ] = None,
) -> None:
    """Fence the old primary (a new generation), stop applying, bring the mirror to the point and
    promote it to production disk."""
    app_ctx = app_context(ctx)
    out = Console(soft_wrap=True, highlight=False)
    if test:
        _test_failover(app_ctx, out, volume, site, to, listen, overlay)
        return
    from tidemark.core.volumes import bump_generation
    from tidemark.sinks.apply.applier_stop import stop_running_applier
    from tidemark.sinks.layout import MirrorLayout
    from tidemark.sinks.ops.failover import failover as run_failover

    from .mirror_state import publish_mirror_state

    if stop_applier:
        pid = stop_running_applier(MirrorLayout.of(app_ctx.settings.state_dir, site, volume))
        if pid is not None:
            out.print(f"the applier (pid {pid}) let go of the mirror")

    def fence() -> int:
        return bump_generation(app_ctx.clients, app_ctx.topics, volume, primary_site=site).generation

    with progress_bar("failover revert") as on_progress:
        report = run_failover(app_ctx.settings.state_dir, site, volume, mirror, to, on_progress, fence)
    publish_mirror_state(app_ctx, report.progress, out)
    out.print(
        f"failed over {volume} (site {site}) at recovery point {report.rp_id}: reverted "
        f"{report.reverted_blocks} blocks changed after it; {report.mirror_path} is now the "
        f"production disk (state FAILED_OVER; `tidemark mirror` refuses to apply to it); generation "
        f"{report.generation}: the old primary's writes are refused from now on."
    )
    if reverse:
        track = tracker_command(volume, report.mirror_path, site, track_listen or "127.0.0.1:10809")
        out.print(
            f"Protected in reverse: {' '.join(track)} serves it under generation {report.generation}; when the old "
            f"primary is back: tidemark rejoin --volume {volume} --from-site {site} --site OLD_SITE --image "
            "OLD_PRIMARY_IMAGE"
        )
        if track_listen is not None:
            os.execv(sys.executable, [sys.executable, "-m", "tidemark.cli", *track[1:]])
        return
    out.print(
        "Serve it with change tracking (needed for a cheap failback): "
        f"tidemark mount --volume {volume} --site {site} --listen 127.0.0.1:10809"
    )
    out.print(
        f"When the old primary is back: tidemark failback --volume {volume} --site {site} "
        f"--mirror {report.mirror_path} --primary OLD_PRIMARY_IMAGE"
    )


def tracker_command(volume: str, image: str, site: str, listen: str) -> list[str]:
    """The tracker that protects a promoted mirror (`failover --reverse`)."""
    return ["tidemark", "track", "nbd", "--volume", volume, "--image", image, "--site", site, "--listen", listen]


def _test_failover(
    app_ctx: AppContext, out: Console, volume: str, site: str, to: int | None, listen: str, overlay: Path | None
) -> None:
    from tidemark.core.nbd.export import ThreadedExport
    from tidemark.core.nbd.server import serve_export
    from tidemark.sinks.exceptions import MirrorStateError
    from tidemark.sinks.layout import MirrorLayout
    from tidemark.sinks.mount.serve import MountRequest, mounted
    from tidemark.sinks.storage import progress as progress_file

    host, port = parse_listen(listen)
    if to is None:
        state = progress_file.load(MirrorLayout.of(app_ctx.settings.state_dir, site, volume).progress)
        to = state.rp_id if state is not None else None
        if to is None:
            raise MirrorStateError(f"the mirror of volume {volume!r} at site {site!r} holds no recovery point yet")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready(bound_host: str, bound_port: int) -> None:
        out.print(
            f"test failover of {volume!r} at recovery point {to}: nbd://{bound_host}:{bound_port}/{volume} "
            "(writes go to an overlay; replication goes on; Ctrl-C to stop)"
        )

    with mounted(app_ctx.settings.state_dir, MountRequest(volume, to, site, True, overlay)) as backend:
        serve_export(ThreadedExport(backend), host, port, ready=ready)


@app.command("failback")
def failback(
    ctx: typer.Context,
    volume: MirrorVolume,
    mirror: Annotated[Path, typer.Option(help="the promoted mirror image")],
    primary: Annotated[Path, typer.Option(help="the old primary's image (rewritten where it differs)")],
    site: MirrorSite = DEFAULT_SITE,
    primary_site: Annotated[
        str | None, typer.Option(help="site of the old primary [default: the original primary]")
    ] = None,
    discard: Annotated[
        str | None,
        typer.Option(
            help="when both sides changed a block: `primary` (the mirror's content wins) or `mirror` "
            "(the old primary's content wins)"
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option(help="compare every block (writes made outside tidemark on either side)")
    ] = False,
    stream: Annotated[
        bool, typer.Option(help="read the change sets the old primary emitted after the failover point")
    ] = True,
) -> None:
    """Copy only the blocks that differ between the two sides, make the old primary the primary
    again (a new generation) and the mirror follow it."""
    from tidemark.core.volumes import bump_generation
    from tidemark.sinks.layout import MirrorLayout
    from tidemark.sinks.ops.failback import failback as run_failback
    from tidemark.sinks.ops.failback_stream import StreamChanges, changed_after
    from tidemark.sinks.storage import progress as progress_file

    from .mirror_state import publish_mirror_state

    app_ctx = app_context(ctx)
    out = Console(soft_wrap=True, highlight=False)
    layout = MirrorLayout.of(app_ctx.settings.state_dir, site, volume)
    state = progress_file.load(layout.progress)
    changes = StreamChanges()
    if stream and state is not None and state.failover_rp is not None:
        changes = changed_after(app_ctx.clients, app_ctx.topics, volume, state.changeset_id, state.generation)
    elif not stream:
        out.print("note: --no-stream: blocks the old primary changed after the failover point are not known "
                  "beyond what the mirror had applied; use --full if it kept running")  # fmt: skip

    def fence() -> int:
        return bump_generation(app_ctx.clients, app_ctx.topics, volume, primary_site=primary_site).generation

    with progress_bar("failback") as on_progress:
        report = run_failback(
            app_ctx.settings.state_dir, site, volume, mirror, primary,
            primary_changed=changes.before, promoted_changed=changes.since, resume=changes.last, full=full,
            discard=discard, fence=fence, on_block=on_progress,
        )  # fmt: skip
    after = progress_file.load(layout.progress)
    if after is not None:
        publish_mirror_state(app_ctx, after, out)
    written = primary if report.overwritten == "primary" else mirror
    out.print(
        f"failed back {volume} (site {site}; had failed over at recovery point {report.failover_rp}): "
        f"{report.conflicts} blocks changed on both sides; compared {report.candidates} blocks, copied "
        f"{report.copied} blocks ({report.bytes_copied} bytes) to {written}, verified equal; "
        f"{primary} is the primary again (generation {report.generation}) and the mirror resumes from "
        f"the stream (start `tidemark mirror --volume {volume} --site {site} --path {mirror}`)."
    )


@app.command("rejoin")
def rejoin(
    ctx: typer.Context,
    volume: Annotated[str, typer.Option(help="volume")],
    image: Annotated[Path, typer.Option(help="the old primary's image: it becomes a mirror")],
    site: Annotated[str, typer.Option(help="site of the old primary (its mirror state goes there)")],
    from_site: Annotated[str, typer.Option(help="site of the mirror promoted with `failover --reverse`")],
) -> None:
    """Make the old primary's image a mirror of the new primary: copy only the blocks changed since
    the common point, then `tidemark mirror --site SITE --path IMAGE` follows the new primary."""
    from tidemark.sinks.layout import MirrorLayout
    from tidemark.sinks.ops.failback_stream import changed_after
    from tidemark.sinks.ops.rejoin import rejoin as run_rejoin
    from tidemark.sinks.storage import progress as progress_file

    app_ctx = app_context(ctx)
    out = Console(soft_wrap=True, highlight=False)
    promoted = progress_file.load(MirrorLayout.of(app_ctx.settings.state_dir, from_site, volume).progress)
    after = promoted.changeset_id if promoted is not None else 0
    changes = changed_after(app_ctx.clients, app_ctx.topics, volume, after)
    with progress_bar("rejoin") as on_progress:
        report = run_rejoin(
            app_ctx.settings.state_dir, volume, site, image, from_site, changes.blocks, changes.last, on_progress
        )
    kept = (
        f"; {report.still_differing} blocks changed on the new primary meanwhile (the stream brings them), "
        f"the overwritten blocks are kept in {report.saved_kept}"
        if report.saved_kept is not None
        else ""
    )
    out.print(
        f"rejoined {image} as the mirror of {volume} at site {site}: compared {report.candidates} blocks, "
        f"copied {report.copied}{kept}; start `tidemark mirror --volume {volume} --site {site} --path {image}` "
        f"(resumes after change set {report.changeset_id}, generation {report.generation})"
    )
