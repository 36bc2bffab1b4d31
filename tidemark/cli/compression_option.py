"""The `--compression` option of the trackers (`track nbd`, `track scan`, `replay`)."""

from __future__ import annotations

from typing import Annotated

import typer

from tidemark.producers.events import Compression

CompressionOption = Annotated[Compression, typer.Option(help="compression of block data in events")]

__all__ = ["Compression", "CompressionOption"]
