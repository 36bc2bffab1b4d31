"""The `tidemark` command: global flags, then one sub-command group per module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tidemark.exceptions import TidemarkError

from .context import build_context

app = typer.Typer(
    name="tidemark",
    help="Continuous block-level replication of disks and volumes, on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    state_dir: Annotated[
        Path | None, typer.Option(help="state directory [env TIDEMARK_STATE_DIR, default .tidemark]")
    ] = None,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers [env TIDEMARK_BOOTSTRAP]")] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="topic name prefix [env TIDEMARK_TOPIC_PREFIX, default tidemark]")
    ] = None,
) -> None:
    ctx.obj = build_context(state_dir, bootstrap, topic_prefix)


def _register() -> None:
    from . import kafka_cmd, process_cmd, replay_cmd, topics_cmd, track_cmd, volume_cmd

    app.add_typer(kafka_cmd.app, name="kafka")
    app.add_typer(topics_cmd.app, name="topics")
    app.add_typer(volume_cmd.app, name="volume")
    app.add_typer(track_cmd.app, name="track")
    app.command("process")(process_cmd.process)
    app.add_typer(replay_cmd.app)  # no group name: the command is `tidemark replay TRACE`
    from . import mirror_cmd, revert_cmd, rp_cmd, verify_cmd

    app.add_typer(mirror_cmd.app)  # `tidemark mirror`
    app.add_typer(rp_cmd.app, name="rp")
    app.add_typer(revert_cmd.app)  # `tidemark revert`
    app.add_typer(verify_cmd.app)  # `tidemark verify`
    from . import failover_cmd, mount_cmd

    app.add_typer(mount_cmd.app)  # `tidemark mount`
    app.add_typer(failover_cmd.app)  # `tidemark failover`, `tidemark failback`
    from . import status_cmd

    app.add_typer(status_cmd.app)  # `tidemark status`
    from . import demo_cmd

    app.add_typer(demo_cmd.app)  # `tidemark demo`
    from . import resync_cmd

    app.add_typer(resync_cmd.app)  # `tidemark resync`
    from . import analytics_cmd

    app.add_typer(analytics_cmd.app)  # `tidemark analytics`
    from . import restore_cmd

    app.add_typer(restore_cmd.app)  # `tidemark restore`


_register()


def main() -> None:
    try:
        app(standalone_mode=True)
    except TidemarkError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
