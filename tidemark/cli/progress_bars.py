"""The progress bar of the one-shot mirror operations (verify, revert, resync, failover, failback, rejoin)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tidemark.core.progress import OnProgress


@contextmanager
def progress_bar(label: str, unit: Literal["blocks", "bytes"] = "blocks") -> Iterator[OnProgress]:
    """A transient bar on stderr (stdout stays for the result); yields the `(done, total)` callback
    the operations report through, counted in blocks or bytes."""
    counter = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    columns = (TextColumn(label), BarColumn(), counter, TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
