"""`tidemark rp list|create`: the recovery points of a volume."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .context import app_context
from .json_option import JsonOption

app = typer.Typer(help="List and create recovery points.", no_args_is_help=True)


@app.command("list")
def list_points(
    ctx: typer.Context,
    volume: Annotated[str, typer.Option(help="volume")],
    as_json: JsonOption = False,
) -> None:
    """Recovery points of VOLUME (from the manifests) and which mirror sites hold each (with
    --json: {"volume", "points": [{rp_id, created_at_ms, kind, label, changed_bytes, sites}]})."""
    from tidemark.sinks.manifests import recovery_points
    from tidemark.sinks.status import latest_statuses

    app_ctx = app_context(ctx)
    points = recovery_points(app_ctx.clients, app_ctx.topics, volume)
    statuses = latest_statuses(app_ctx.clients, app_ctx.topics, volume)
    rows = point_rows(points, {site: s["rp_id"] for site, s in statuses.items()})
    if as_json:
        typer.echo(json.dumps({"volume": volume, "points": rows}, indent=2))
        return
    table = Table("rp", "time", "kind", "label", "changed bytes", "sites")
    for row in rows:
        created = dt.datetime.fromtimestamp(row["created_at_ms"] / 1000).isoformat(sep=" ", timespec="seconds")
        table.add_row(
            str(row["rp_id"]), created, row["kind"], row["label"] or "", str(row["changed_bytes"]),
            ", ".join(row["sites"]),
        )  # fmt: skip
    Console(soft_wrap=True).print(table)


def point_rows(points: dict[int, dict[str, Any]], site_points: dict[str, int | None]) -> list[dict[str, Any]]:
    """One row per recovery point (from its manifest header), in the order given; `sites` are the
    mirror sites (sorted) whose applied point is this one or a later one."""
    return [
        {
            "rp_id": rp_id,
            "created_at_ms": header["created_at"],
            "kind": header["kind"],
            "label": header["label"],
            "changed_bytes": header["changed_bytes"],
            "sites": sorted(site for site, at in site_points.items() if at is not None and at >= rp_id),
        }
        for rp_id, header in points.items()
    ]


@app.command("create")
def create(
    ctx: typer.Context,
    volume: Annotated[str | None, typer.Option(help="volume")] = None,
    label: Annotated[str | None, typer.Option(help="label shown by `rp list`")] = None,
    group: Annotated[
        str | None, typer.Option(help="a consistency group: one barrier point for all its volumes")
    ] = None,
) -> None:
    """Ask for a recovery point: a REQUESTED marker in the volume's write stream (or a group barrier).

    When a tracker of the volume runs on this host (same state directory), it is asked on its
    control socket and queues the marker behind every write it acknowledged, so the point holds
    them; otherwise the marker is written to Kafka directly."""
    from tidemark.core.names import validate_name
    from tidemark.producers.control_socket import request_marker
    from tidemark.sinks.ops.markers import request_group_barrier, request_recovery_point

    app_ctx = app_context(ctx)
    if (volume is None) == (group is None):
        raise typer.BadParameter("give exactly one of --volume and --group")
    if group is not None:
        barrier_id, members = request_group_barrier(app_ctx.clients, app_ctx.topics, group, label)
        Console(soft_wrap=True).print(
            f"requested barrier {barrier_id} for group {group}: {', '.join(members)}", highlight=False
        )
        return
    assert volume is not None
    validate_name(volume)
    console = Console(soft_wrap=True, highlight=False)
    folder = app_ctx.settings.volume_state_dir("trackers", volume)
    if request_marker(folder, label):  # a refusal raises with the tracker's reason
        console.print(
            f"requested a recovery point of {volume} through its tracker (behind every write it acknowledged)"
        )
        return
    marker_id = request_recovery_point(app_ctx.clients, app_ctx.topics, volume, label)
    console.print(
        f"requested a recovery point of {volume} (marker {marker_id}), written to Kafka directly: no tracker of "
        f"{volume} answered on {folder / 'control.sock'}, so writes a tracker elsewhere acknowledged but has not "
        "shipped yet may land after it"
    )
