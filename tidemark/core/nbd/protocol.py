"""The NBD wire format, as far as tidemark's NBD server speaks it (fixed newstyle; simple and structured replies).

Everything is big-endian (network byte order). One connection goes through three phases:

1. Handshake. The server sends `HANDSHAKE` (NBDMAGIC, IHAVEOPT, handshake flags); the client
   answers with `CLIENT_FLAGS`.
2. Option haggling. The client sends `OPTION_HEADER` followed by `length` bytes of option data;
   the server answers each option with one or more `OPTION_REPLY_HEADER` + data, except
   NBD_OPT_EXPORT_NAME, which is answered by `EXPORT_NAME_REPLY` (plus 124 zero bytes unless both
   sides agreed on NO_ZEROES) and moves straight to transmission. NBD_OPT_GO moves to
   transmission after its NBD_REP_ACK.
3. Transmission. The client sends `REQUEST` (followed by `length` bytes of data for
   NBD_CMD_WRITE); the server answers each request with `SIMPLE_REPLY` (followed by `length`
   bytes of data for a successful NBD_CMD_READ), or, once NBD_OPT_STRUCTURED_REPLY was agreed,
   NBD_CMD_READ and NBD_CMD_BLOCK_STATUS with one or more `STRUCTURED_REPLY` chunks, the last
   one flagged REPLY_FLAG_DONE. Replies may come in any order; the client matches them by
   `handle`.

Metadata contexts: only `base:allocation` (holes and zeros), chosen with NBD_OPT_SET_META_CONTEXT
after structured replies. NBD_OPT_STARTTLS upgrades the connection when TLS is configured (`tls.py`).
Extended headers are not offered (NBD_REP_ERR_UNSUP).

Each layout below is one `struct.Struct` (`Layout.packer`) with one comment per field; field
offsets are computed from the formats (`Layout.offset`), never written by hand.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# --- magic numbers -----------------------------------------------------------------------------
NBDMAGIC = 0x4E42444D41474943  # "NBDMAGIC": first 8 bytes the server sends
IHAVEOPT = 0x49484156454F5054  # "IHAVEOPT": newstyle server; also starts every client option
OPTION_REPLY_MAGIC = 0x0003E889045565A9  # starts every option reply
REQUEST_MAGIC = 0x25609513  # starts every transmission request
SIMPLE_REPLY_MAGIC = 0x67446698  # starts every simple reply

# --- handshake flags (server, 16 bits) and client flags (32 bits) ------------------------------
FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1
FLAG_C_FIXED_NEWSTYLE = 1 << 0
FLAG_C_NO_ZEROES = 1 << 1
KNOWN_CLIENT_FLAGS = FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES
EXPORT_NAME_PADDING = 124  # zero bytes after EXPORT_NAME_REPLY unless NO_ZEROES was agreed

# --- options (client -> server) ----------------------------------------------------------------
OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

# --- option reply types (server -> client); errors have bit 31 set ------------------------------
REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
_REP_ERR = 1 << 31
REP_ERR_UNSUP = _REP_ERR + 1
REP_ERR_POLICY = _REP_ERR + 2
REP_ERR_INVALID = _REP_ERR + 3
REP_ERR_TLS_REQD = _REP_ERR + 5
REP_ERR_UNKNOWN = _REP_ERR + 6
REP_ERR_TOO_BIG = _REP_ERR + 9

# --- NBD_REP_INFO payload types ----------------------------------------------------------------
INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

# --- transmission flags (16 bits, sent with the export size) -----------------------------------
TFLAG_HAS_FLAGS = 1 << 0
TFLAG_READ_ONLY = 1 << 1
TFLAG_SEND_FLUSH = 1 << 2
TFLAG_SEND_FUA = 1 << 3
TFLAG_ROTATIONAL = 1 << 4
TFLAG_SEND_TRIM = 1 << 5
TFLAG_SEND_WRITE_ZEROES = 1 << 6
TFLAG_SEND_DF = 1 << 7
TFLAG_CAN_MULTI_CONN = 1 << 8
TFLAG_SEND_CACHE = 1 << 10
TFLAG_SEND_FAST_ZERO = 1 << 11

# What every export offers (a read-only export adds TFLAG_READ_ONLY). CAN_MULTI_CONN is safe
# because every `Export.flush` covers the writes completed on all connections (one shared image
# synced, and every event the tracker accepted confirmed), not only its own connection's.
TRANSMISSION_FLAGS = (
    TFLAG_HAS_FLAGS
    | TFLAG_SEND_FLUSH
    | TFLAG_SEND_FUA
    | TFLAG_SEND_TRIM
    | TFLAG_SEND_WRITE_ZEROES
    | TFLAG_CAN_MULTI_CONN
    | TFLAG_SEND_CACHE
    | TFLAG_SEND_FAST_ZERO
)

# --- commands and command flags ----------------------------------------------------------------
CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7
CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1  # WRITE_ZEROES: keep the range allocated
CMD_FLAG_REQ_ONE = 1 << 3  # BLOCK_STATUS: one descriptor is enough
CMD_FLAG_FAST_ZERO = 1 << 4  # WRITE_ZEROES: fail with ENOTSUP rather than write zeros slowly

# --- structured replies: magic, chunk flags and types --------------------------------------------
STRUCTURED_REPLY_MAGIC = 0x668E33EF
REPLY_FLAG_DONE = 1 << 0  # the last chunk of a reply
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = (1 << 15) + 1

# --- metadata contexts ---------------------------------------------------------------------------
BASE_ALLOCATION = "base:allocation"
BASE_ALLOCATION_ID = 1  # the id this server gives base:allocation (any nonzero value would do)
STATE_HOLE = 1 << 0  # base:allocation: the range is not allocated
STATE_ZERO = 1 << 1  # base:allocation: the range reads as zeros

# --- error values in SIMPLE_REPLY (fixed by the protocol, not the host's errno) -----------------
EPERM = 1
EIO = 5
ENOMEM = 12
EINVAL = 22
ENOSPC = 28
EOVERFLOW = 75
ENOTSUP = 95
ESHUTDOWN = 108

# --- limits ------------------------------------------------------------------------------------
MAX_STRING = 4096  # longest export name or other string the protocol allows
MAX_OPTION_DATA = 2 * MAX_STRING  # longest option payload accepted (GO: name + info requests)
MAX_PAYLOAD = 32 * 1024 * 1024  # largest READ/WRITE payload; advertised as maximum block size
MAX_META_QUERIES = 64  # most metadata context queries accepted in one option
MAX_ERROR_MESSAGE = 1024  # error chunk messages are cut to this many bytes


@dataclass(frozen=True)
class Layout:
    """A fixed-size wire structure: field names, their struct codes, and computed offsets."""

    name: str
    fields: tuple[tuple[str, str], ...]
    packer: struct.Struct = field(init=False)
    offset: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        codes = "".join(code for _, code in self.fields)
        offsets: dict[str, int] = {}
        for index, (name, _) in enumerate(self.fields):
            offsets[name] = struct.calcsize(">" + "".join(code for _, code in self.fields[:index]))
        object.__setattr__(self, "packer", struct.Struct(">" + codes))
        object.__setattr__(self, "offset", offsets)

    @property
    def size(self) -> int:
        return self.packer.size

    def pack(self, *values: int) -> bytes:
        return self.packer.pack(*values)

    def unpack(self, data: bytes) -> tuple[int, ...]:
        return self.packer.unpack(data)


# S -> C, first message of the connection.
HANDSHAKE = Layout(
    "handshake",
    (
        ("nbdmagic", "Q"),  # NBDMAGIC
        ("ihaveopt", "Q"),  # IHAVEOPT: this is a newstyle server
        ("flags", "H"),  # handshake flags: FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES
    ),
)

# C -> S, answer to HANDSHAKE.
CLIENT_FLAGS = Layout(
    "client flags",
    (
        (
            "flags",
            "I",
        ),  # FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES; any other bit: disconnect
    ),
)

# C -> S, one per option; followed by `length` bytes of option data.
OPTION_HEADER = Layout(
    "option header",
    (
        ("magic", "Q"),  # IHAVEOPT
        ("option", "I"),  # OPT_*
        ("length", "I"),  # bytes of option data that follow
    ),
)

# S -> C, one or more per option (not EXPORT_NAME); followed by `length` bytes of reply data.
OPTION_REPLY_HEADER = Layout(
    "option reply header",
    (
        ("magic", "Q"),  # OPTION_REPLY_MAGIC
        ("option", "I"),  # the option being answered
        ("type", "I"),  # REP_*
        ("length", "I"),  # bytes of reply data that follow
    ),
)

# S -> C, answer to OPT_EXPORT_NAME; then EXPORT_NAME_PADDING zero bytes unless NO_ZEROES.
EXPORT_NAME_REPLY = Layout(
    "export name reply",
    (
        ("size", "Q"),  # export size in bytes
        ("flags", "H"),  # transmission flags
    ),
)

# Data of OPT_INFO / OPT_GO: a name length, the name, then a count and that many info types.
INFO_REQUEST_NAME_LENGTH = Layout(
    "info request name length",
    (
        ("name_length", "I"),  # bytes of export name that follow
    ),
)
INFO_REQUEST_COUNT = Layout(
    "info request count",
    (
        ("count", "H"),  # number of 16-bit INFO_* codes that follow
    ),
)
INFO_TYPE = Layout("info type", (("type", "H"),))  # one requested INFO_* code

# Data of REP_SERVER (answer to OPT_LIST): name length, then the name.
SERVER_REPLY_NAME_LENGTH = Layout(
    "server reply name length",
    (
        ("name_length", "I"),  # bytes of export name that follow
    ),
)

# Data of REP_INFO with INFO_EXPORT.
INFO_EXPORT_REPLY = Layout(
    "info export",
    (
        ("type", "H"),  # INFO_EXPORT
        ("size", "Q"),  # export size in bytes
        ("flags", "H"),  # transmission flags
    ),
)

# Data of REP_INFO with INFO_BLOCK_SIZE.
INFO_BLOCK_SIZE_REPLY = Layout(
    "info block size",
    (
        ("type", "H"),  # INFO_BLOCK_SIZE
        (
            "minimum",
            "I",
        ),  # smallest request granularity the server accepts (1: any byte)
        ("preferred", "I"),  # requests of this granularity avoid read-modify-write
        ("maximum", "I"),  # largest READ/WRITE payload
    ),
)

# C -> S, one per request; NBD_CMD_WRITE is followed by `length` bytes of data.
REQUEST = Layout(
    "request",
    (
        ("magic", "I"),  # REQUEST_MAGIC
        ("flags", "H"),  # CMD_FLAG_*
        ("type", "H"),  # CMD_*
        ("handle", "Q"),  # opaque cookie, echoed in the reply
        ("offset", "Q"),  # byte offset into the export
        ("length", "I"),  # bytes to read/write/trim/zero
    ),
)

# S -> C, one per request except DISC; a successful READ is followed by `length` bytes of data.
SIMPLE_REPLY = Layout(
    "simple reply",
    (
        ("magic", "I"),  # SIMPLE_REPLY_MAGIC
        ("error", "I"),  # 0 or one of the E* values above
        ("handle", "Q"),  # the request's handle
    ),
)

# Data of OPT_LIST_META_CONTEXT / OPT_SET_META_CONTEXT: export name length, name, query count,
# then per query a length and the query string.
META_REQUEST_LENGTH = Layout(
    "meta context length",
    (
        (
            "length",
            "I",
        ),  # bytes of export name (or of one query) that follow; also the query count
    ),
)

# Data of REP_META_CONTEXT: the context id, then the context name (rest of the reply).
META_CONTEXT_REPLY = Layout(
    "meta context reply",
    (
        ("context_id", "I"),  # id that BLOCK_STATUS chunks carry (0 in LIST answers)
    ),
)

# S -> C, one per chunk of a structured reply; followed by `length` bytes of chunk payload.
STRUCTURED_REPLY = Layout(
    "structured reply",
    (
        ("magic", "I"),  # STRUCTURED_REPLY_MAGIC
        ("flags", "H"),  # REPLY_FLAG_DONE on the last chunk
        ("type", "H"),  # REPLY_TYPE_*
        ("handle", "Q"),  # the request's handle
        ("length", "I"),  # bytes of chunk payload that follow
    ),
)

# Payload of REPLY_TYPE_OFFSET_DATA: the offset, then the data (rest of the chunk).
OFFSET_DATA = Layout("offset data", (("offset", "Q"),))  # export offset of the first data byte

# Payload of REPLY_TYPE_OFFSET_HOLE: a range that reads as zeros.
OFFSET_HOLE = Layout(
    "offset hole",
    (
        ("offset", "Q"),  # export offset of the hole
        ("length", "I"),  # bytes of zeros (nonzero)
    ),
)

# Payload of REPLY_TYPE_BLOCK_STATUS: the context id, then one or more BLOCK_DESCRIPTORs.
BLOCK_STATUS_HEADER = Layout("block status", (("context_id", "I"),))  # BASE_ALLOCATION_ID
BLOCK_DESCRIPTOR = Layout(
    "block descriptor",
    (
        (
            "length",
            "I",
        ),  # bytes this descriptor covers (nonzero), consecutive from the request offset
        ("flags", "I"),  # STATE_HOLE | STATE_ZERO for base:allocation
    ),
)

# Payload of REPLY_TYPE_ERROR: the error, then a message of `message_length` bytes.
ERROR_CHUNK = Layout(
    "error chunk",
    (
        ("error", "I"),  # one of the E* values (nonzero)
        ("message_length", "H"),  # bytes of UTF-8 message that follow
    ),
)


def option_reply(option: int, reply_type: int, data: bytes = b"") -> bytes:
    """One option reply: header plus data."""
    return OPTION_REPLY_HEADER.pack(OPTION_REPLY_MAGIC, option, reply_type, len(data)) + data


def simple_reply(handle: int, error: int = 0) -> bytes:
    return SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, error, handle)
