"""`tidemark topics create | list`: the topics of the design on the configured cluster."""

from __future__ import annotations

import typer
from rich.console import Console

from tidemark.core.topic_admin import cluster_replication, create_topics, list_topics, topic_specs

from .context import app_context

app = typer.Typer(help="Create and list the tidemark topics.")
console = Console(highlight=False, markup=False, soft_wrap=True)


@app.command()
def create(ctx: typer.Context) -> None:
    """Create every topic of the design (idempotent: existing topics are left as they are).

    Replication factor min(3, live brokers), min.insync.replicas min(2, factor).
    """
    context = app_context(ctx)
    replication = cluster_replication(context.clients, context.settings)
    specs = topic_specs(context.topics, context.settings, replication)
    created = set(create_topics(context.clients, specs))
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        settings = ", ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        console.print(
            f"{state:8} {spec.name}  partitions={spec.partitions}  replicas={spec.replication_factor}  {settings}"
        )
    console.print(f"bootstrap: {context.clients.bootstrap}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the topics with this prefix (TIDEMARK_TOPIC_PREFIX), with their partition counts."""
    context = app_context(ctx)
    prefix = context.topics.prefix + "."
    for name, partitions in sorted(list_topics(context.clients).items()):
        if name.startswith(prefix):
            console.print(f"{name}  partitions={partitions}")
