"""Every .avsc record has a typed constructor whose records round-trip through the codec."""

from __future__ import annotations

import inspect
import json
from importlib import resources
from typing import Any, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidemark.schemas.codec import bundled_schemas, default_codec
from tidemark.schemas.exceptions import InvalidRecordError
from tidemark.schemas.records import CONSTRUCTORS, RECORDS, block_write, extent, recovery_point_chunk, volume

SCHEMAS = {schema["name"]: schema for schema in bundled_schemas()}
COMPUTED = {"DeadLetter"}
"""Constructors that take other arguments than the fields (they compute some): tested on their own."""
CHECKSUM = st.binary(min_size=8, max_size=8)
SPECIAL: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("BlockWrite", "checksum"): CHECKSUM,
    ("Extent", "checksum"): CHECKSUM,
    ("RecoveryPointChunk", "first_block"): st.integers(0, 1 << 40),
    ("RecoveryPointChunk", "checksums"): st.binary(max_size=40).map(lambda b: b[: len(b) // 8 * 8]),
}


def test_every_avsc_file_has_a_constructor_and_a_typed_dict() -> None:
    names = {
        json.loads(entry.read_text())["name"]
        for entry in resources.files("tidemark.schemas").iterdir()
        if entry.name.endswith(".avsc")
    }
    assert names == set(CONSTRUCTORS) == set(RECORDS) == set(default_codec().record_types)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_typed_dict_keys_are_the_schemas_fields_in_order(name: str) -> None:
    assert list(get_type_hints(RECORDS[name])) == [field["name"] for field in SCHEMAS[name]["fields"]]


@pytest.mark.parametrize("name", sorted(set(SCHEMAS) - COMPUTED))
def test_constructor_takes_the_fields_keyword_only_with_the_schemas_defaults(name: str) -> None:
    params = inspect.signature(CONSTRUCTORS[name]).parameters
    fields = SCHEMAS[name]["fields"]
    assert set(params) == {field["name"] for field in fields}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    for field in fields:
        default = params[field["name"]].default
        assert default == field.get("default", inspect.Parameter.empty), f"{name}.{field['name']}"


def _strategy(record: str, field: str, avro_type: Any) -> st.SearchStrategy[Any]:
    if (record, field) in SPECIAL:
        return SPECIAL[(record, field)]
    if isinstance(avro_type, list):
        return st.one_of(*(_strategy(record, field, branch) for branch in avro_type))
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "enum":
            return st.sampled_from(avro_type["symbols"])
        if kind == "map":
            return st.dictionaries(st.text(max_size=8), _strategy(record, field, avro_type["values"]), max_size=3)
        if kind == "array":
            return st.lists(_strategy(record, field, avro_type["items"]), max_size=3)
        if kind == "record":
            return st.fixed_dictionaries(
                {f["name"]: _strategy(record, f["name"], f["type"]) for f in avro_type["fields"]}
            )
        return _strategy(record, field, kind)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(0, 2**31 - 1),
        "long": st.integers(0, 2**63 - 1),
        "double": st.floats(allow_nan=False),
        "string": st.text(max_size=20),
        "bytes": st.binary(max_size=64),
    }
    return simple[avro_type]


def constructor_arguments(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments of record `name`'s constructor, drawn from its .avsc (one per field)."""
    fields = SCHEMAS[name]["fields"]
    return st.fixed_dictionaries({f["name"]: _strategy(name, f["name"], f["type"]) for f in fields})


@pytest.mark.parametrize("name", sorted(set(SCHEMAS) - COMPUTED))
@settings(max_examples=40)
@given(data=st.data())
def test_constructed_records_round_trip_through_the_codec(name: str, data: st.DataObject) -> None:
    arguments = data.draw(constructor_arguments(name))
    if name == "RecoveryPointChunk":
        arguments["last_block"] = arguments["first_block"] + data.draw(st.integers(0, 1 << 20))
    record = CONSTRUCTORS[name](**arguments)
    assert record == arguments
    assert default_codec().decode(default_codec().encode(name, record)) == (name, record)


def test_defaults_are_the_bytes_of_an_event_without_those_fields() -> None:
    codec = default_codec()
    record = recovery_point_chunk(volume="v", rp_id=1, index=0, first_block=3, last_block=9, bitmap=b"", checksums=b"")
    assert codec.encode("RecoveryPointChunk", record) == codec.encode("RecoveryPointChunk", dict(record))
    minimal = volume(name="v", size=4096, block_size=4096, created_at=5)
    without_defaults = {"name": "v", "size": 4096, "block_size": 4096, "created_at": 5}
    assert codec.encode("Volume", minimal) == codec.encode("Volume", without_defaults)


@pytest.mark.parametrize(
    ("offset", "length", "checksum"),
    [(-1, 4096, bytes(8)), (0, -4096, bytes(8)), (0, 4096, bytes(7)), (0, 4096, bytes(9))],
)
def test_writes_and_extents_refuse_negative_offsets_and_short_checksums(
    offset: int, length: int, checksum: bytes
) -> None:
    with pytest.raises(InvalidRecordError, match="vm1"):
        block_write(
            volume="vm1", epoch=1, seq=1, timestamp=1, offset=offset, length=length, op="WRITE",
            compression="NONE", data=b"", checksum=checksum,
        )  # fmt: skip
    with pytest.raises(InvalidRecordError, match="vm1"):
        extent(
            volume="vm1", changeset_id=1, index=0, offset=offset, length=length, op="ZERO", compression="NONE",
            data=b"", checksum=checksum,
        )  # fmt: skip


def test_a_chunk_refuses_a_descending_range_and_partial_checksums() -> None:
    with pytest.raises(InvalidRecordError, match="blocks 9..3"):
        recovery_point_chunk(volume="v", rp_id=1, index=0, first_block=9, last_block=3, bitmap=b"", checksums=b"")
    with pytest.raises(InvalidRecordError, match="12 bytes"):
        recovery_point_chunk(volume="v", rp_id=1, index=0, first_block=1, last_block=3, bitmap=b"", checksums=bytes(12))
