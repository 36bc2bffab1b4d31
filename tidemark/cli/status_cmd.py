"""`tidemark status [--json]`: per volume, what each stage did, read from the Kafka topics."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tidemark.status.model import SiteInfo, VolumeStatus

from .context import app_context

# Registered without a group name, so the command is `tidemark status`.
app = typer.Typer(help="Show the replication status of every volume.")


@app.command("status")
def status(
    ctx: typer.Context,
    volume: Annotated[str | None, typer.Option(help="only this volume")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (one object with a list of volumes)")] = False,
) -> None:
    """Tracker, last recovery point, each site's applied point, RPO lag, throughput, dead letters."""
    from tidemark.status.collect import collect

    app_ctx = app_context(ctx)
    found = collect(app_ctx.clients, app_ctx.topics, volume, app_ctx.settings.state_dir)
    if as_json:
        typer.echo(json.dumps({"volumes": [v.to_json() for v in found]}, indent=2))
        return
    console = Console(soft_wrap=True, highlight=False)
    if not found:
        console.print(f"no registered volume{f' named {volume!r}' if volume else ''} in {app_ctx.topics.volumes}")
        return
    console.print(status_table(found, time.time()))


def _age(seconds_then: float, now: float) -> str:
    return f"{max(0.0, now - seconds_then):.0f}s ago"


def _site(site: SiteInfo) -> str:
    pinned = f" (pinned: {', '.join(map(str, site.pinned))})" if site.pinned else ""
    return f"{site.site}: {site.state} rp {site.rp_id if site.rp_id is not None else '-'}{pinned}"


def status_table(volumes: list[VolumeStatus], now: float) -> Table:
    table = Table("volume", "tracker", "last recovery point", "sites", "RPO lag", "throughput", "dead letters")
    for v in volumes:
        tracker = "no events"
        if v.tracker is not None:
            t = v.tracker
            tracker = f"epoch {t.epoch} seq {t.last_seq}\n{t.last_event}, {_age(t.timestamp_us / 1e6, now)}"
        point = "none"
        if v.last_recovery_point is not None:
            p = v.last_recovery_point
            point = (
                f"#{p.rp_id} {p.kind} {p.label or ''}\n{_age(p.created_at_ms / 1000, now)} ({v.recovery_points} kept)"
            )
        sites = "\n".join(_site(s) for s in v.sites) or "none"
        lag = v.rpo_lag_seconds
        throughput = "no metrics"
        if v.throughput is not None:
            m = v.throughput
            throughput = (
                f"{m.writes_per_second:.1f} w/s {m.bytes_per_second / 1e6:.2f} MB/s\n"
                f"written {m.bytes_written_total} shipped {m.bytes_shipped_total}"
            )
        table.add_row(
            f"{v.volume}\n{v.size} B", tracker, point, sites,
            "-" if lag is None else f"{lag:.1f}s", throughput, str(v.dead_letters),
        )  # fmt: skip
    return table
