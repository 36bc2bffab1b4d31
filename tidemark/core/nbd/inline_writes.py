"""The write fast path: runs of plain aligned WRITE requests served in C, one call per run.

`serve_writes` is the native function (`_inline_writes.c` states what it serves, in which order,
and where a run stops); None when the extension was not built (no compiler at install time),
and the server then answers every request in Python, with the same results. An export offers
the path through `InlineWriteExport.inline_write_hooks` (export.py), per run, only while the
path's conditions hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

Intent = Callable[[list[tuple[int, int]]], object]
Submit = Callable[[list[tuple[int, bytes]]], int]
ServeWrites = Callable[[bytearray, int, int, int, int, int, int, Intent, Submit], tuple[int, bytes]]
serve_writes: ServeWrites | None
try:
    from tidemark.core.nbd._inline_writes import serve_writes as _native
except ImportError:  # built without a C compiler: every request takes the Python path
    serve_writes = None
else:
    serve_writes = _native

MAX_RUN = 256  # requests one call serves (the caller calls again; its receive buffer bounds the run)


class InlineWriteHooks(NamedTuple):
    """What one run needs from the export.

    Once per run: `intent(ranges)`, the run's (offset, length) in order, before the image changes;
    `submit(writes)` after, the (offset, data) written in order, returning how many it took (a
    prefix). Both must return at once. `fd` is the image, written with pwrite at each request's
    offset; `max_length`: the largest WRITE served (page-cache I/O on the event loop, at most
    MAX_PAYLOAD).
    """

    fd: int
    block_size: int
    max_length: int
    intent: Intent
    submit: Submit


def available() -> bool:
    """True when the C fast path was built."""
    return serve_writes is not None
