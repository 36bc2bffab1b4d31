"""Options shared by the commands that act on one site's mirror of a volume (verify, revert, resync,
mount, failover, failback)."""

from __future__ import annotations

from typing import Annotated

import typer

from tidemark.sinks.layout import DEFAULT_SITE

MirrorVolume = Annotated[str, typer.Option(help="volume of the mirror")]
MirrorSite = Annotated[str, typer.Option(help="site of the mirror")]

__all__ = ["DEFAULT_SITE", "MirrorSite", "MirrorVolume"]
