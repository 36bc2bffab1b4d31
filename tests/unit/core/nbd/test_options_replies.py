"""Option parsing and reply encoding without a server (hypothesis): every byte string either
parses or raises InvalidOption; encoded replies parse back to what was encoded."""

from __future__ import annotations

import contextlib
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidemark.core.nbd import protocol as p
from tidemark.core.nbd import replies
from tidemark.core.nbd.dispatch import Outcome, Request, clip_extents
from tidemark.core.nbd.options import (
    InvalidOption,
    matching_contexts,
    parse_info_request,
    parse_meta_request,
)

names = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
u32 = st.integers(0, 0xFFFFFFFF)


def meta_request(name: str, queries: list[str]) -> bytes:
    parts = [p.META_REQUEST_LENGTH.pack(len(name.encode())), name.encode(), p.META_REQUEST_LENGTH.pack(len(queries))]
    for query in queries:
        parts += [p.META_REQUEST_LENGTH.pack(len(query.encode())), query.encode()]
    return b"".join(parts)


@given(name=names, queries=st.lists(names, max_size=8))
def test_meta_requests_round_trip(name: str, queries: list[str]) -> None:
    assert parse_meta_request(meta_request(name, queries)) == (name, queries)


@given(name=names, queries=st.lists(names, max_size=4), cut=st.integers(1, 40))
def test_cut_or_padded_meta_requests_are_invalid(name: str, queries: list[str], cut: int) -> None:
    data = meta_request(name, queries)
    with pytest.raises(InvalidOption):
        parse_meta_request(data[: max(0, len(data) - cut)])
    with pytest.raises(InvalidOption):
        parse_meta_request(data + b"\x00")


@given(data=st.binary(max_size=64))
def test_any_bytes_parse_or_are_invalid(data: bytes) -> None:
    for parse in (parse_meta_request, parse_info_request):
        with contextlib.suppress(InvalidOption):
            parse(data)


def test_too_many_queries_are_invalid() -> None:
    with pytest.raises(InvalidOption, match="more than"):
        parse_meta_request(meta_request("", ["x"] * (p.MAX_META_QUERIES + 1)))


@pytest.mark.parametrize(
    ("queries", "listing", "expected"),
    [
        ([], True, [p.BASE_ALLOCATION]),
        ([], False, []),
        (["base:"], True, [p.BASE_ALLOCATION]),
        (["base:"], False, []),
        (["qemu:dirty-bitmap:a", p.BASE_ALLOCATION], False, [p.BASE_ALLOCATION]),
        (["qemu:dirty-bitmap:a"], True, []),
    ],
)
def test_matching_contexts(queries: list[str], listing: bool, expected: list[str]) -> None:
    assert matching_contexts(queries, listing) == expected


@given(
    extents=st.lists(st.tuples(st.integers(-5, 1 << 20), st.sampled_from([0, 1, 3])), max_size=20),
    length=st.integers(1, 1 << 22),
    one=st.booleans(),
)
def test_clipped_extents_are_valid_descriptors(extents: list[tuple[int, int]], length: int, one: bool) -> None:
    clipped = clip_extents(extents, length, one)
    assert clipped and all(size > 0 for size, _ in clipped)
    assert sum(size for size, _ in clipped) <= length
    assert all(a[1] != b[1] for a, b in pairwise(clipped)), "neighbours merge"
    if one:
        assert len(clipped) == 1


def parse_chunk(pieces: list[bytes]) -> tuple[int, int, int, bytes]:
    raw = b"".join(pieces)
    magic, flags, kind, handle, length = p.STRUCTURED_REPLY.unpack(raw[: p.STRUCTURED_REPLY.size])
    assert magic == p.STRUCTURED_REPLY_MAGIC and len(raw) == p.STRUCTURED_REPLY.size + length
    return flags, kind, handle, raw[p.STRUCTURED_REPLY.size :]


@given(handle=st.integers(0, (1 << 64) - 1), offset=st.integers(0, 1 << 40), data=st.binary(max_size=600))
def test_structured_reads_encode_offset_and_data(handle: int, offset: int, data: bytes) -> None:
    flags, kind, answered, payload = parse_chunk(
        replies.encode(Request(0, p.CMD_READ, handle, offset, len(data)), Outcome(0, data), structured=True)
    )
    assert (flags, answered) == (p.REPLY_FLAG_DONE, handle)
    if data:
        assert kind == p.REPLY_TYPE_OFFSET_DATA and payload == p.OFFSET_DATA.pack(offset) + data
    else:
        assert kind == p.REPLY_TYPE_NONE and payload == b""


@given(extents=st.lists(st.tuples(st.integers(1, 1 << 31), u32), min_size=1, max_size=16))
def test_block_status_chunks_carry_the_context_and_descriptors(extents: list[tuple[int, int]]) -> None:
    request = Request(0, p.CMD_BLOCK_STATUS, 9, 0, (1 << 32) - 1)
    _, kind, _, payload = parse_chunk(replies.encode(request, Outcome(0, extents=extents), structured=True))
    assert kind == p.REPLY_TYPE_BLOCK_STATUS
    assert p.BLOCK_STATUS_HEADER.unpack(payload[:4]) == (p.BASE_ALLOCATION_ID,)
    assert [p.BLOCK_DESCRIPTOR.unpack(payload[at : at + 8]) for at in range(4, len(payload), 8)] == extents


@given(error=st.sampled_from([p.EIO, p.EINVAL, p.ENOSPC]), message=st.text(max_size=2000))
def test_error_chunks_carry_a_bounded_utf8_message(error: int, message: str) -> None:
    _, kind, _, payload = parse_chunk(replies.error(3, error, message))
    value, length = p.ERROR_CHUNK.unpack(payload[:6])
    assert (kind, value, length) == (p.REPLY_TYPE_ERROR, error, len(payload) - 6)
    assert length <= p.MAX_ERROR_MESSAGE and message.startswith(payload[6:].decode())


def test_without_structured_replies_everything_is_a_simple_reply() -> None:
    read = Request(0, p.CMD_READ, 4, 0, 3)
    assert replies.encode(read, Outcome(0, b"abc"), structured=False) == [p.simple_reply(4), b"abc"]
    assert replies.encode(read, Outcome(p.EIO), structured=False) == [p.simple_reply(4, p.EIO)]
    write = Request(0, p.CMD_WRITE, 5, 0, 3)
    assert replies.encode(write, Outcome(0), structured=True) == [p.simple_reply(5)]
