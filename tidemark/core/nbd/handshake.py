"""Fixed newstyle handshake and option haggling, up to the start of transmission."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from tidemark.core.exceptions import NbdProtocolError

from . import protocol as p
from .options import (
    InvalidOption,
    decode_name,
    matching_contexts,
    parse_info_request,
    parse_meta_request,
)
from .tls import TlsMode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportInfo:
    """What a client learns about the one export this server offers."""

    name: str
    size: int
    preferred_block_size: int
    flags: int = p.TRANSMISSION_FLAGS

    def matches(self, requested: str) -> bool:
        """The volume name, or the empty default export name."""
        return requested in ("", self.name)


class HandshakeReader(Protocol):
    """Where the handshake reads from (an asyncio.StreamReader, or the connection's own buffer)."""

    async def readexactly(self, n: int) -> bytes:
        """Raises asyncio.IncompleteReadError when the client goes away first."""
        ...


class HandshakeWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def start_tls(self) -> None:
        """Run the TLS handshake as the server; later reads and writes go through TLS."""
        ...


@dataclass(frozen=True)
class Session:
    """What haggling agreed for transmission."""

    structured: bool = False  # NBD_OPT_STRUCTURED_REPLY was acknowledged
    block_status: bool = False  # base:allocation was selected with NBD_OPT_SET_META_CONTEXT


@dataclass
class _Haggling:
    """State that options build up, one after another."""

    no_zeroes: bool
    structured: bool = False
    base_allocation: bool = False
    tls: bool = False

    def session(self) -> Session:
        return Session(self.structured, self.structured and self.base_allocation)


async def negotiate(
    reader: HandshakeReader, writer: HandshakeWriter, export: ExportInfo, tls: TlsMode = TlsMode.OFF
) -> Session | None:
    """Run the handshake; the agreed session when the client entered transmission, None when it aborted.

    Raises `NbdProtocolError` for a broken handshake (the caller closes the connection) and
    `asyncio.IncompleteReadError` when the client disappears.
    """
    writer.write(p.HANDSHAKE.pack(p.NBDMAGIC, p.IHAVEOPT, p.FLAG_FIXED_NEWSTYLE | p.FLAG_NO_ZEROES))
    await writer.drain()
    (client_flags,) = p.CLIENT_FLAGS.unpack(await reader.readexactly(p.CLIENT_FLAGS.size))
    if client_flags & ~p.KNOWN_CLIENT_FLAGS:
        raise NbdProtocolError(f"client sent unknown handshake flags {client_flags:#x}")
    state = _Haggling(no_zeroes=bool(client_flags & p.FLAG_C_NO_ZEROES))
    while True:
        magic, option, length = p.OPTION_HEADER.unpack(await reader.readexactly(p.OPTION_HEADER.size))
        if magic != p.IHAVEOPT:
            raise NbdProtocolError(f"option header has magic {magic:#x}, expected IHAVEOPT")
        if length > p.MAX_OPTION_DATA:
            raise NbdProtocolError(f"option {option} carries {length} bytes, more than {p.MAX_OPTION_DATA}")
        data = await reader.readexactly(length)
        if option == p.OPT_STARTTLS and tls != TlsMode.OFF:
            await _start_tls(writer, state, data)
            continue
        if tls == TlsMode.REQUIRE and not state.tls and option != p.OPT_ABORT:
            if option == p.OPT_EXPORT_NAME:
                raise NbdProtocolError("client asked for an export without TLS, which this server requires")
            writer.write(p.option_reply(option, p.REP_ERR_TLS_REQD, b"this server requires NBD_OPT_STARTTLS first"))
            await writer.drain()
            continue
        entered = _answer(writer, export, state, option, data)
        await writer.drain()
        if entered is not None:
            return state.session() if entered else None


async def _start_tls(writer: HandshakeWriter, state: _Haggling, data: bytes) -> None:
    """Acknowledge STARTTLS and upgrade; what was agreed before it is forgotten (the protocol says so)."""
    if data or state.tls:
        reason = b"NBD_OPT_STARTTLS takes no data" if data else b"TLS is already active"
        writer.write(p.option_reply(p.OPT_STARTTLS, p.REP_ERR_INVALID, reason))
        await writer.drain()
        return
    writer.write(p.option_reply(p.OPT_STARTTLS, p.REP_ACK))
    await writer.drain()
    await writer.start_tls()
    state.tls, state.structured, state.base_allocation = True, False, False


def _answer(
    writer: HandshakeWriter,
    export: ExportInfo,
    state: _Haggling,
    option: int,
    data: bytes,
) -> bool | None:
    """Answer one option; True/False ends haggling (transmission/abort), None continues."""
    if option == p.OPT_EXPORT_NAME:
        if not export.matches(decode_name(data)):
            raise NbdProtocolError(f"client asked for unknown export {data[:64]!r} via NBD_OPT_EXPORT_NAME")
        writer.write(p.EXPORT_NAME_REPLY.pack(export.size, export.flags))
        if not state.no_zeroes:
            writer.write(bytes(p.EXPORT_NAME_PADDING))
        return True
    if option == p.OPT_ABORT:
        writer.write(p.option_reply(option, p.REP_ACK))
        return False
    try:
        if option == p.OPT_LIST:
            _answer_list(writer, export, data)
        elif option in (p.OPT_INFO, p.OPT_GO):
            return _answer_info(writer, export, option, data)
        elif option == p.OPT_STRUCTURED_REPLY:
            _answer_structured_reply(writer, state, data)
        elif option in (p.OPT_LIST_META_CONTEXT, p.OPT_SET_META_CONTEXT):
            _answer_meta_context(writer, export, state, option, data)
        else:
            log.debug("refusing unsupported NBD option %d", option)
            writer.write(p.option_reply(option, p.REP_ERR_UNSUP))
    except InvalidOption as exc:
        writer.write(p.option_reply(option, p.REP_ERR_INVALID, str(exc).encode()))
    return None


def _answer_list(writer: HandshakeWriter, export: ExportInfo, data: bytes) -> None:
    if data:
        raise InvalidOption("NBD_OPT_LIST takes no data")
    name = export.name.encode()
    writer.write(p.option_reply(p.OPT_LIST, p.REP_SERVER, p.SERVER_REPLY_NAME_LENGTH.pack(len(name)) + name))
    writer.write(p.option_reply(p.OPT_LIST, p.REP_ACK))


def _answer_structured_reply(writer: HandshakeWriter, state: _Haggling, data: bytes) -> None:
    if data:
        raise InvalidOption("NBD_OPT_STRUCTURED_REPLY takes no data")
    if state.structured:
        raise InvalidOption("structured replies were already agreed")
    state.structured = True
    writer.write(p.option_reply(p.OPT_STRUCTURED_REPLY, p.REP_ACK))


def _answer_meta_context(
    writer: HandshakeWriter,
    export: ExportInfo,
    state: _Haggling,
    option: int,
    data: bytes,
) -> None:
    """LIST answers every matching context with id 0; SET replaces the selection (only with structured replies)."""
    listing = option == p.OPT_LIST_META_CONTEXT
    if not listing and not state.structured:
        raise InvalidOption("NBD_OPT_SET_META_CONTEXT needs NBD_OPT_STRUCTURED_REPLY first")
    name, queries = parse_meta_request(data)
    if not export.matches(name):
        message = f"no export named {name!r}; this server exports {export.name!r}".encode()
        writer.write(p.option_reply(option, p.REP_ERR_UNKNOWN, message))
        return
    contexts = matching_contexts(queries, listing)
    if not listing:
        state.base_allocation = bool(contexts)
    for context in contexts:
        context_id = 0 if listing else p.BASE_ALLOCATION_ID
        writer.write(
            p.option_reply(
                option,
                p.REP_META_CONTEXT,
                p.META_CONTEXT_REPLY.pack(context_id) + context.encode(),
            )
        )
    writer.write(p.option_reply(option, p.REP_ACK))


def _answer_info(writer: HandshakeWriter, export: ExportInfo, option: int, data: bytes) -> bool | None:
    name = parse_info_request(data)
    if not export.matches(name):
        message = f"no export named {name!r}; this server exports {export.name!r}".encode()
        writer.write(p.option_reply(option, p.REP_ERR_UNKNOWN, message))
        return None
    # NBD_INFO_EXPORT is mandatory; the block sizes are always sent (minimum 1: any byte offset works).
    export_info = p.INFO_EXPORT_REPLY.pack(p.INFO_EXPORT, export.size, export.flags)
    writer.write(p.option_reply(option, p.REP_INFO, export_info))
    block_sizes = p.INFO_BLOCK_SIZE_REPLY.pack(p.INFO_BLOCK_SIZE, 1, export.preferred_block_size, p.MAX_PAYLOAD)
    writer.write(p.option_reply(option, p.REP_INFO, block_sizes))
    writer.write(p.option_reply(option, p.REP_ACK))
    return True if option == p.OPT_GO else None
