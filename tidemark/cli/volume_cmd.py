"""`tidemark volume add|list`: the registry of protected volumes."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tidemark.core.volumes import DEFAULT_BLOCK_SIZE, VolumeSpec, publish_volume, read_volumes

from .context import app_context
from .json_option import JsonOption

app = typer.Typer(help="Register and list protected volumes.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str,
    size: Annotated[int, typer.Option(help="volume size in bytes (a multiple of the block size)")],
    block_size: Annotated[int, typer.Option(help="tracking granularity in bytes")] = DEFAULT_BLOCK_SIZE,
    group: Annotated[str | None, typer.Option(help="consistency group")] = None,
) -> None:
    """Register a volume (publishes a Volume event to the compacted volumes topic)."""
    app_ctx = app_context(ctx)
    spec = VolumeSpec(name=name, size=size, block_size=block_size, group=group)
    publish_volume(app_ctx.clients, app_ctx.topics, spec)
    Console().print(f"registered volume {name}: {size} bytes, block size {block_size}")


@app.command("list")
def list_volumes(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show every registered volume (with --json: {"volumes": [{name, size, block_size, group,
    generation, primary_site}]}, sorted by name)."""
    app_ctx = app_context(ctx)
    specs = sorted(read_volumes(app_ctx.clients, app_ctx.topics).values(), key=lambda v: v.name)
    if as_json:
        typer.echo(json.dumps({"volumes": [dataclasses.asdict(spec) for spec in specs]}, indent=2))
        return
    table = Table("volume", "size", "block size", "group")
    for spec in specs:
        table.add_row(spec.name, str(spec.size), str(spec.block_size), spec.group or "")
    Console().print(table)
