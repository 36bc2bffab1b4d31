"""The record every trace parser yields, and the line plumbing the parsers share."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from tidemark.producers.exceptions import TraceFormatError


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One I/O of a trace, in the units the replayer needs.

    `number` is the 1-based line of the record in its file: it identifies the record in error
    messages and seeds the record's generated content, so it stays the same after sorting.
    """

    number: int
    time: float
    """Seconds since the trace start (the earliest record)."""
    is_write: bool
    offset: int
    """Bytes from the start of the traced device."""
    size: int
    """Bytes."""


def numbered_lines(path: Path) -> Generator[tuple[int, str], None, None]:
    """The non-blank lines of a text trace, stripped, with their 1-based line numbers."""
    try:
        with path.open("r", encoding="ascii", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                stripped = line.strip()
                if stripped:
                    yield number, stripped
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"{path}: not an ASCII text trace ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise TraceFormatError(f"cannot read trace {path}: {exc.strerror}") from exc


def malformed(path: Path, number: int, why: str, line: str) -> TraceFormatError:
    """The error for one bad line: names the file, the line number and what was expected."""
    shown = line if len(line) <= 120 else line[:117] + "..."
    return TraceFormatError(f"{path}:{number}: {why}: {shown!r}")


def parse_int(text: str, field: str, path: Path, number: int, line: str) -> int:
    """A non-negative decimal integer field, or a TraceFormatError naming the field."""
    try:
        value = int(text)
    except ValueError:
        raise malformed(path, number, f"{field} is not an integer", line) from None
    if value < 0:
        raise malformed(path, number, f"{field} is negative", line)
    return value


def parse_float(text: str, field: str, path: Path, number: int, line: str) -> float:
    """A finite, non-negative decimal number field, or a TraceFormatError naming the field."""
    try:
        value = float(text)
    except ValueError:
        raise malformed(path, number, f"{field} is not a number", line) from None
    if not (0.0 <= value < float("inf")):
        raise malformed(path, number, f"{field} must be a finite non-negative number", line)
    return value
