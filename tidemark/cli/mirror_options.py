"""Options shared by the commands that act on one site's mirror of a volume (verify, revert, resync,
mount, restore, failover, failback)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tidemark.sinks.layout import DEFAULT_SITE

MirrorVolume = Annotated[str, typer.Option(help="volume of the mirror")]
MirrorSite = Annotated[str, typer.Option(help="site of the mirror")]
ServedMirrorVolume = Annotated[str, typer.Option(help="volume of the mirror; also the NBD export name")]
MirrorImage = Annotated[Path, typer.Option(help="mirror image (as given to `tidemark mirror --path`)")]

__all__ = ["DEFAULT_SITE", "MirrorImage", "MirrorSite", "MirrorVolume", "ServedMirrorVolume"]
