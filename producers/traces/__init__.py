"""Parsers of public block I/O traces. Each yields `TraceRecord`s in replay (time) order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from tidemark.producers.exceptions import TraceFormatError

from . import disksim, msr, systor
from .record import TraceRecord

Parser = Callable[[Path], Iterator[TraceRecord]]

FORMATS: dict[str, Parser] = {"msr": msr.parse, "systor": systor.parse, "disksim": disksim.parse}


def read_trace(path: Path, fmt: str) -> Iterator[TraceRecord]:
    """The records of `path` parsed as `fmt` (one of FORMATS); lazily, except SYSTOR (sorted)."""
    parser = FORMATS.get(fmt)
    if parser is None:
        raise TraceFormatError(f"unknown trace format {fmt!r}: use one of {', '.join(sorted(FORMATS))}")
    if not path.is_file():
        raise TraceFormatError(f"trace file {path} does not exist or is not a file")
    return parser(path)


__all__ = ["FORMATS", "Parser", "TraceRecord", "read_trace"]
