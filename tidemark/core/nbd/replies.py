"""The bytes of one transmission reply: a simple reply, or the chunks of a structured reply.

Once structured replies were agreed, NBD_CMD_READ and NBD_CMD_BLOCK_STATUS are answered with
structured chunks (the protocol requires it for both); every other command keeps the 16-byte
simple reply, which the protocol allows and every client reads. A structured reply here is
always one chunk flagged REPLY_FLAG_DONE:

- READ success: OFFSET_DATA = STRUCTURED_REPLY(length 8 + n) | offset u64 | n bytes of data
  (a zero-length READ gets a NONE chunk: OFFSET_DATA must carry at least one byte);
- BLOCK_STATUS success: BLOCK_STATUS = STRUCTURED_REPLY(length 4 + 8k) | context id u32 |
  k x (length u32, flags u32);
- any error: ERROR = STRUCTURED_REPLY(length 6 + m) | error u32 | m u16 | m bytes of message.

The pieces are returned as a list so a large READ payload is written without being copied.
"""

from __future__ import annotations

from . import protocol as p
from .dispatch import Outcome, Request
from .export import Extents


def simple(handle: int, error: int, data: bytes | None = None) -> list[bytes]:
    """A simple reply; `data` follows only a successful READ."""
    head = p.SIMPLE_REPLY.pack(p.SIMPLE_REPLY_MAGIC, error, handle)
    return [head, data] if error == 0 and data else [head]


def _chunk(handle: int, kind: int, length: int) -> bytes:
    return p.STRUCTURED_REPLY.pack(p.STRUCTURED_REPLY_MAGIC, p.REPLY_FLAG_DONE, kind, handle, length)


def read_data(handle: int, offset: int, data: bytes) -> list[bytes]:
    """The whole READ answer as one OFFSET_DATA chunk (or NONE for an empty read)."""
    if not data:
        return [_chunk(handle, p.REPLY_TYPE_NONE, 0)]
    head = _chunk(handle, p.REPLY_TYPE_OFFSET_DATA, p.OFFSET_DATA.size + len(data)) + p.OFFSET_DATA.pack(offset)
    return [head, data]


def block_status(handle: int, context_id: int, extents: Extents) -> list[bytes]:
    """One BLOCK_STATUS chunk for one metadata context; `extents` must not be empty."""
    if not extents:
        raise ValueError("a BLOCK_STATUS chunk needs at least one descriptor")
    body = b"".join(p.BLOCK_DESCRIPTOR.pack(length, flags) for length, flags in extents)
    payload = p.BLOCK_STATUS_HEADER.pack(context_id) + body
    return [_chunk(handle, p.REPLY_TYPE_BLOCK_STATUS, len(payload)) + payload]


def error(handle: int, value: int, message: str = "") -> list[bytes]:
    """An ERROR chunk: the NBD error value and a message (UTF-8, cut to MAX_ERROR_MESSAGE bytes)."""
    text = message.encode()[: p.MAX_ERROR_MESSAGE].decode("utf-8", "ignore").encode()
    payload = p.ERROR_CHUNK.pack(value, len(text)) + text
    return [_chunk(handle, p.REPLY_TYPE_ERROR, len(payload)) + payload]


def encode(request: Request, outcome: Outcome, structured: bool) -> list[bytes]:
    """The reply to `request`: structured for READ and BLOCK_STATUS once agreed, simple otherwise."""
    handle = request.handle
    if structured and request.type in (p.CMD_READ, p.CMD_BLOCK_STATUS):
        if outcome.error:
            return error(handle, outcome.error)
        if request.type == p.CMD_READ:
            return read_data(handle, request.offset, outcome.data or b"")
        return block_status(handle, p.BASE_ALLOCATION_ID, outcome.extents or [(request.length, 0)])
    return simple(handle, outcome.error, outcome.data if request.type == p.CMD_READ else None)
