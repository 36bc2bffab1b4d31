"""`tidemark kafka start | stop | status | fetch`: the local single-node broker.

When a cluster is named (`TIDEMARK_BOOTSTRAP` or `--bootstrap`), these commands start nothing and
say which cluster is used instead.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from tidemark.core.broker import BrokerStatus, LocalBroker

from .context import AppContext, app_context

app = typer.Typer(help="Run a local single-node Kafka broker (KRaft) under the state directory.")
console = Console(highlight=False, markup=False, soft_wrap=True)

PortOption = Annotated[
    Optional[int],
    typer.Option("--port", help="listener port on 127.0.0.1 [env TIDEMARK_KAFKA_PORT; default: free port, kept]"),
]


def _external(context: AppContext) -> bool:
    if context.kafka.bootstrap:
        console.print(
            f"using the Kafka cluster at {context.kafka.bootstrap} (TIDEMARK_BOOTSTRAP); "
            "no local broker is started or stopped"
        )
        return True
    return False


def _describe(status: BrokerStatus) -> None:
    console.print(f"pid:       {status.pid}")
    console.print(f"bootstrap: {status.bootstrap}")
    console.print(f"data:      {status.data_dir}")
    console.print(f"logs:      {status.logs_dir}")


@app.command()
def start(ctx: typer.Context, port: PortOption = None) -> None:
    """Start the broker (assembling Kafka from Maven on first use) and wait until it is ready."""
    context = app_context(ctx)
    if _external(context):
        return
    broker = LocalBroker(context.settings, port=port)
    if broker.pid() is None:
        console.print("starting the local Kafka broker ...")
    status = broker.start()
    console.print("already running" if status.already_running else "running")
    _describe(status)


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the broker (SIGTERM, then SIGKILL after 30 s); its data stays for the next start."""
    context = app_context(ctx)
    if _external(context):
        return
    broker = LocalBroker(context.settings)
    if broker.stop():
        console.print(f"stopped the local Kafka broker (data kept in {broker.data_dir})")
    else:
        console.print("the local Kafka broker was not running")


@app.command()
def status(ctx: typer.Context) -> None:
    """Say whether the broker runs, and where. Exit code 3 when it does not run."""
    context = app_context(ctx)
    if _external(context):
        return
    current = LocalBroker(context.settings).status()
    if not current.running:
        console.print(f"not running (data: {current.data_dir})")
        raise typer.Exit(3)
    console.print("running")
    _describe(current)


@app.command()
def fetch(ctx: typer.Context) -> None:
    """Assemble the Kafka jars from Maven into the cache without starting anything."""
    broker = LocalBroker(app_context(ctx).settings)
    console.print(f"Kafka {broker.distribution.version} jars in {broker.fetch()}")
