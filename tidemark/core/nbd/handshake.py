"""Fixed newstyle handshake and option haggling, up to the start of transmission."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from tidemark.core.exceptions import NbdProtocolError

from . import protocol as p

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


class _InvalidOption(Exception):
    """Option data that does not parse; answered with NBD_REP_ERR_INVALID."""


async def negotiate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, export: ExportInfo) -> bool:
    """Run the handshake; True when the client entered transmission, False when it aborted.

    Raises `NbdProtocolError` for a broken handshake (the caller closes the connection) and
    `asyncio.IncompleteReadError` when the client disappears.
    """
    writer.write(p.HANDSHAKE.pack(p.NBDMAGIC, p.IHAVEOPT, p.FLAG_FIXED_NEWSTYLE | p.FLAG_NO_ZEROES))
    await writer.drain()
    (client_flags,) = p.CLIENT_FLAGS.unpack(await reader.readexactly(p.CLIENT_FLAGS.size))
    if client_flags & ~p.KNOWN_CLIENT_FLAGS:
        raise NbdProtocolError(f"client sent unknown handshake flags {client_flags:#x}")
    no_zeroes = bool(client_flags & p.FLAG_C_NO_ZEROES)
    while True:
        magic, option, length = p.OPTION_HEADER.unpack(await reader.readexactly(p.OPTION_HEADER.size))
        if magic != p.IHAVEOPT:
            raise NbdProtocolError(f"option header has magic {magic:#x}, expected IHAVEOPT")
        if length > p.MAX_OPTION_DATA:
            raise NbdProtocolError(f"option {option} carries {length} bytes, more than {p.MAX_OPTION_DATA}")
        data = await reader.readexactly(length)
        entered = await _answer(writer, export, option, data, no_zeroes)
        await writer.drain()
        if entered is not None:
            return entered


async def _answer(
    writer: asyncio.StreamWriter, export: ExportInfo, option: int, data: bytes, no_zeroes: bool
) -> bool | None:
    """Answer one option; True/False ends haggling (transmission/abort), None continues."""
    if option == p.OPT_EXPORT_NAME:
        if not export.matches(_decode_name(data)):
            raise NbdProtocolError(f"client asked for unknown export {data[:64]!r} via NBD_OPT_EXPORT_NAME")
        writer.write(p.EXPORT_NAME_REPLY.pack(export.size, export.flags))
        if not no_zeroes:
            writer.write(bytes(p.EXPORT_NAME_PADDING))
        return True
    if option == p.OPT_ABORT:
        writer.write(p.option_reply(option, p.REP_ACK))
        return False
    if option == p.OPT_LIST:
        if data:
            writer.write(p.option_reply(option, p.REP_ERR_INVALID, b"NBD_OPT_LIST takes no data"))
            return None
        name = export.name.encode()
        writer.write(p.option_reply(option, p.REP_SERVER, p.SERVER_REPLY_NAME_LENGTH.pack(len(name)) + name))
        writer.write(p.option_reply(option, p.REP_ACK))
        return None
    if option in (p.OPT_INFO, p.OPT_GO):
        return _answer_info(writer, export, option, data)
    log.debug("refusing unsupported NBD option %d", option)
    writer.write(p.option_reply(option, p.REP_ERR_UNSUP))
    return None


def _answer_info(writer: asyncio.StreamWriter, export: ExportInfo, option: int, data: bytes) -> bool | None:
    try:
        name = _parse_info_request(data)
    except _InvalidOption as exc:
        writer.write(p.option_reply(option, p.REP_ERR_INVALID, str(exc).encode()))
        return None
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


def _parse_info_request(data: bytes) -> str:
    """The export name of an NBD_OPT_INFO / NBD_OPT_GO request (requested info types are ignored)."""
    head = p.INFO_REQUEST_NAME_LENGTH
    if len(data) < head.size:
        raise _InvalidOption("option data shorter than its name length field")
    (name_length,) = head.unpack(data[: head.size])
    count_at = head.size + name_length
    count_end = count_at + p.INFO_REQUEST_COUNT.size
    if name_length > p.MAX_STRING or len(data) < count_end:
        raise _InvalidOption("export name length does not fit the option data")
    (count,) = p.INFO_REQUEST_COUNT.unpack(data[count_at:count_end])
    if len(data) != count_end + count * p.INFO_TYPE.size:
        raise _InvalidOption("number of information requests does not match the option length")
    return _decode_name(data[head.size : count_at])


def _decode_name(raw: bytes) -> str:
    """Export names are UTF-8; anything else cannot match and is reported as unknown."""
    return raw.decode("utf-8", errors="replace")
