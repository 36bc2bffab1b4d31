"""`tidemark kafka start | stop | status | fetch`: the local cluster (one to three KRaft nodes).

When a cluster is named (`TIDEMARK_BOOTSTRAP` or `--bootstrap`), these commands start nothing and
say which cluster is used instead.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tidemark.localkafka import ClusterStatus, LocalCluster
from tidemark.localkafka.ports import MAX_BROKERS

from .context import AppContext, app_context

app = typer.Typer(help="Run a local Kafka cluster (KRaft, 1 to 3 nodes on loopback) under the state directory.")
console = Console(highlight=False, markup=False, soft_wrap=True)

PortOption = Annotated[
    int | None,
    typer.Option(
        "--port", help="node 1's listener port on 127.0.0.1 [env TIDEMARK_KAFKA_PORT; default: free port, kept]"
    ),
]
BrokersOption = Annotated[
    int | None,
    typer.Option(
        "--brokers", min=1, max=MAX_BROKERS,
        help="nodes of a new cluster, each broker and controller [env TIDEMARK_KAFKA_BROKERS; default 1, "
        "or what the state directory was formatted with]",
    ),
]  # fmt: skip


def _external(context: AppContext) -> bool:
    if context.kafka.bootstrap:
        console.print(
            f"using the Kafka cluster at {context.kafka.bootstrap} (TIDEMARK_BOOTSTRAP); "
            "no local broker is started or stopped"
        )
        return True
    return False


def _describe(status: ClusterStatus) -> None:
    if len(status.pids) == 1:
        console.print(f"pid:       {status.pid}")
    else:
        for number, pid in enumerate(status.pids, start=1):
            console.print(f"node {number}:    {'pid ' + str(pid) if pid is not None else 'not running'}")
    console.print(f"bootstrap: {status.bootstrap}")
    console.print(f"data:      {status.data_dir}")
    console.print(f"logs:      {status.logs_dir}")


@app.command()
def start(ctx: typer.Context, port: PortOption = None, brokers: BrokersOption = None) -> None:
    """Start every node (assembling Kafka from Maven on first use) and wait until all are ready."""
    context = app_context(ctx)
    if _external(context):
        return
    cluster = LocalCluster(context.settings, port=port, brokers=brokers)
    if not cluster.status().running:
        console.print(f"starting the local Kafka cluster ({cluster.brokers} node(s)) ...")
    status = cluster.start()
    console.print("already running" if status.already_running else "running")
    _describe(status)


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop every node (SIGTERM, then SIGKILL after 30 s); the data stays for the next start."""
    context = app_context(ctx)
    if _external(context):
        return
    cluster = LocalCluster(context.settings)
    if cluster.stop():
        console.print(f"stopped the local Kafka cluster (data kept in {cluster.home})")
    else:
        console.print("the local Kafka cluster was not running")


@app.command()
def status(ctx: typer.Context) -> None:
    """Say whether the cluster runs, and where. Exit code 3 unless every node runs."""
    context = app_context(ctx)
    if _external(context):
        return
    current = LocalCluster(context.settings).status()
    if not any(current.pids):
        console.print(f"not running (data: {current.data_dir})")
        raise typer.Exit(3)
    console.print("running" if current.running else "degraded: not every node runs")
    _describe(current)
    if not current.running:
        raise typer.Exit(3)


@app.command()
def fetch(ctx: typer.Context) -> None:
    """Assemble the Kafka jars from Maven into the cache without starting anything."""
    cluster = LocalCluster(app_context(ctx).settings)
    console.print(f"Kafka {cluster.distribution.version} jars in {cluster.fetch()}")
