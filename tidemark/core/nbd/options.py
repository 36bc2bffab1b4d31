"""Parsing of option data sent during haggling; pure functions, every length checked.

A malformed option raises `InvalidOption`, which the handshake answers with
NBD_REP_ERR_INVALID (haggling goes on). Layouts:

- NBD_OPT_INFO / NBD_OPT_GO: name length u32 | name | count u16 | count x info type u16.
- NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: name length u32 | name | count u32 |
  count x (query length u32 | query).
"""

from __future__ import annotations

from . import protocol as p


class InvalidOption(Exception):
    """Option data that does not parse; answered with NBD_REP_ERR_INVALID."""


def decode_name(raw: bytes) -> str:
    """Export names and queries are UTF-8; anything else cannot match and is reported as unknown."""
    return raw.decode("utf-8", errors="replace")


def _string(data: bytes, at: int, what: str) -> tuple[str, int]:
    """The u32-length-prefixed string at `at`, and the offset after it."""
    head = p.META_REQUEST_LENGTH
    if len(data) < at + head.size:
        raise InvalidOption(f"option data ends inside the length of the {what}")
    (length,) = head.unpack(data[at : at + head.size])
    start = at + head.size
    if length > p.MAX_STRING or len(data) < start + length:
        raise InvalidOption(f"{what} length {length} does not fit the option data")
    return decode_name(data[start : start + length]), start + length


def parse_info_request(data: bytes) -> str:
    """The export name of an NBD_OPT_INFO / NBD_OPT_GO request (requested info types are ignored)."""
    head = p.INFO_REQUEST_NAME_LENGTH
    if len(data) < head.size:
        raise InvalidOption("option data shorter than its name length field")
    (name_length,) = head.unpack(data[: head.size])
    count_at = head.size + name_length
    count_end = count_at + p.INFO_REQUEST_COUNT.size
    if name_length > p.MAX_STRING or len(data) < count_end:
        raise InvalidOption("export name length does not fit the option data")
    (count,) = p.INFO_REQUEST_COUNT.unpack(data[count_at:count_end])
    if len(data) != count_end + count * p.INFO_TYPE.size:
        raise InvalidOption("number of information requests does not match the option length")
    return decode_name(data[head.size : count_at])


def parse_meta_request(data: bytes) -> tuple[str, list[str]]:
    """(export name, queries) of an NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT request."""
    name, at = _string(data, 0, "export name")
    count_field = p.META_REQUEST_LENGTH
    if len(data) < at + count_field.size:
        raise InvalidOption("option data ends before the number of queries")
    (count,) = count_field.unpack(data[at : at + count_field.size])
    if count > p.MAX_META_QUERIES:
        raise InvalidOption(f"{count} metadata context queries, more than {p.MAX_META_QUERIES}")
    at += count_field.size
    queries = []
    for _ in range(count):
        query, at = _string(data, at, "query")
        queries.append(query)
    if at != len(data):
        raise InvalidOption("option data is longer than its name and queries")
    return name, queries


def matching_contexts(queries: list[str], listing: bool) -> list[str]:
    """The contexts (only base:allocation exists) the queries select.

    LIST with no query lists every context, and the namespace alone (`base:`) matches every
    context in it; SET selects only what is named in full.
    """
    if listing and not queries:
        return [p.BASE_ALLOCATION]
    wanted = {p.BASE_ALLOCATION, "base:"} if listing else {p.BASE_ALLOCATION}
    return [p.BASE_ALLOCATION] if any(query in wanted for query in queries) else []
