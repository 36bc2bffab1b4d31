"""The `--metrics-port` option shared by the long-running stages (trackers, processor, mirror)."""

from __future__ import annotations

from typing import Annotated

import typer

MetricsPort = Annotated[
    int | None,
    typer.Option(min=0, max=65535, help="serve Prometheus metrics on 127.0.0.1:PORT/metrics [default: not served]"),
]
