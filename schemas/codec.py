"""The one codec for every tidemark event: Avro single-object encoding.

Wire layout (Avro specification, "Single-object encoding"):

    offset 0   2 bytes  marker C3 01
    offset 2   8 bytes  CRC-64-AVRO fingerprint of the writer schema's canonical form, little-endian
    offset 10  ...      the record, Avro binary encoding with the writer schema

Readers decode with the newest schema of a record type (the reader schema) and resolve from the
writer schema named by the fingerprint, so old and new producers and consumers interoperate as
long as fields are added with defaults.

Records are built by the typed constructors of `tidemark.schemas.records` (one per `.avsc`); which
record types each topic carries is declared in `tidemark.schemas.topic_records`.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from .blockwrite_reader import NativeDecode, reader_for
from .exceptions import DecodeError, EncodeError, SchemaError

MARKER = b"\xc3\x01"
HEADER = struct.Struct("<2sQ")  # marker, fingerprint (uint64 little-endian)
NAMESPACE = "io.tidemark"

Record = dict[str, Any]


@dataclass(frozen=True)
class _Schema:
    name: str
    parsed: Any
    fingerprint: int
    native: NativeDecode | None = None
    """a C reader of this exact version's body (blockwrite_reader.py), used when it is also the reader"""


def _fingerprint(parsed: Any) -> int:
    canonical = to_parsing_canonical_form(parsed)
    return int(fingerprint(canonical, "CRC-64-AVRO"), 16)


def _short_name(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]


def _parse(schema: Mapping[str, Any], source: str) -> _Schema:
    try:
        parsed = fastavro.parse_schema(dict(schema), named_schemas={})
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise SchemaError(f"invalid Avro schema in {source}: {exc}") from exc
    if not isinstance(parsed, dict):
        raise SchemaError(f"{source} is not an Avro record schema (a JSON object with a name)")
    name, fp = _short_name(parsed["name"]), _fingerprint(parsed)
    return _Schema(name, parsed, fp, reader_for(name, fp))


def bundled_schemas() -> list[dict[str, Any]]:
    """The schemas shipped in this package (`schemas/*.avsc`)."""
    folder = resources.files("tidemark.schemas")
    found = [json.loads(entry.read_text()) for entry in folder.iterdir() if entry.name.endswith(".avsc")]
    if not found:
        raise SchemaError("no *.avsc files found in the tidemark.schemas package; reinstall tidemark")
    return found


def load_schema_file(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read schema {path}: {exc}") from exc
    return loaded


class Codec:
    """Encodes and decodes tidemark events by record type name (`BlockWrite`, `Marker`, ...).

    `schemas` are the reader/writer schemas this process uses; `known_writers` are other
    versions (older or newer) whose bytes it must still be able to read.
    """

    def __init__(
        self,
        schemas: Iterable[Mapping[str, Any]] | None = None,
        known_writers: Iterable[Mapping[str, Any]] = (),
        *,
        native: bool = True,
    ) -> None:
        """`native`: read with the C readers where built (False: fastavro for every version, for the tests)."""
        self._native = native
        self._current: dict[str, _Schema] = {}
        self._writers: dict[int, _Schema] = {}
        for schema in schemas if schemas is not None else bundled_schemas():
            parsed = _parse(schema, "current schemas")
            self._current[parsed.name] = parsed
            self._writers[parsed.fingerprint] = parsed
        for schema in known_writers:
            parsed = _parse(schema, "known writer schemas")
            self._writers.setdefault(parsed.fingerprint, parsed)

    @property
    def record_types(self) -> list[str]:
        return sorted(self._current)

    def fingerprint_of(self, record_type: str) -> int:
        return self._schema(record_type).fingerprint

    def _schema(self, record_type: str) -> _Schema:
        try:
            return self._current[record_type]
        except KeyError:
            raise EncodeError(f"unknown record type {record_type!r}; known: {', '.join(self.record_types)}") from None

    def encode(self, record_type: str, record: Mapping[str, Any]) -> bytes:
        schema = self._schema(record_type)
        out = io.BytesIO()
        out.write(HEADER.pack(MARKER, schema.fingerprint))
        try:
            fastavro.schemaless_writer(out, schema.parsed, record)
        except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, ...
            raise EncodeError(f"{record_type} record does not fit its schema: {exc}") from exc
        return out.getvalue()

    def record_type_of(self, data: bytes) -> str:
        """The record type named by the header, without decoding the body."""
        return self._writer_of(data).name

    def _writer_of(self, data: bytes) -> _Schema:
        if len(data) < HEADER.size:
            raise DecodeError(f"truncated event: {len(data)} bytes, the header alone is {HEADER.size}")
        marker, fp = HEADER.unpack_from(data)
        if marker != MARKER:
            raise DecodeError(f"not an Avro single-object encoded event: marker {marker.hex()} instead of c301")
        writer = self._writers.get(fp)
        if writer is None:
            raise DecodeError(
                f"unknown schema fingerprint {fp:016x}: the producer uses a schema this consumer "
                "does not know; upgrade tidemark or add the schema to known writers"
            )
        return writer

    def decode(self, data: bytes) -> tuple[str, Record]:
        """Return `(record_type, record)`. A stage reading a topic decodes with
        `tidemark.schemas.topic_records.decode_on`, which also refuses record types the topic does not carry."""
        writer = self._writer_of(data)
        reader = self._current.get(writer.name, writer)
        if writer.native is not None and reader is writer and self._native:
            try:
                return writer.name, writer.native(data, HEADER.size)
            except ValueError as exc:
                raise DecodeError(f"corrupt {writer.name} event: {exc}") from exc
        body = io.BytesIO(memoryview(data)[HEADER.size :])
        try:
            record = fastavro.schemaless_reader(body, writer.parsed, reader.parsed)
        except Exception as exc:  # truncation, bad varints, bad UTF-8, bad enum index, ...
            raise DecodeError(f"corrupt {writer.name} event: {type(exc).__name__}: {exc}") from exc
        if body.tell() != len(data) - HEADER.size:
            raise DecodeError(f"corrupt {writer.name} event: {len(data) - HEADER.size - body.tell()} trailing bytes")
        if not isinstance(record, dict):
            raise DecodeError(f"corrupt {writer.name} event: not a record")
        return writer.name, record


_default: Codec | None = None


def default_codec() -> Codec:
    """The process-wide codec over the bundled schemas (schemas are parsed once)."""
    global _default
    if _default is None:
        _default = Codec()
    return _default
