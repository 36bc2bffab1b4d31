"""The BlockWrite body read in C (`_blockwrite_reader.c`), for the schema version it was written for.

Every consumer of the writes topic decodes every BlockWrite: the processor once per event on its
one thread, where fastavro's generic reader took 7-16 us of its 80 us per 4 KiB event (a
py-spy profile of the processor draining a journal of 4 KiB writes). The C reader builds the same
dict in about 1 us. It knows one layout only, so the codec uses it only for bytes written with the
schema whose fingerprint is `FINGERPRINT` and read with that same schema; any other version goes
through fastavro with schema resolution. Changing BlockWrite.avsc changes its fingerprint, which
turns the C reader off until the C source and `FINGERPRINT` follow (a unit test fails until then:
`tests/unit/schemas/test_blockwrite_reader.py`). Optional: without a C compiler, fastavro reads
everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NativeDecode = Callable[[bytes | memoryview, int], dict[str, Any]]

FINGERPRINT = 0x99B73FB3C7F6348A
"""CRC-64-AVRO of the canonical BlockWrite schema the C source reads (see its comment for the layout)."""

native_decode: NativeDecode | None
try:
    from tidemark.schemas._blockwrite_reader import decode as _native
except ImportError:  # built without a C compiler
    native_decode = None
else:
    native_decode = _native


def reader_for(name: str, fingerprint: int) -> NativeDecode | None:
    """The C reader for a writer schema, when it is the layout the C source reads (else None)."""
    return native_decode if name == "BlockWrite" and fingerprint == FINGERPRINT else None
