"""Errors of the schemas stage (the codec)."""

from tidemark.exceptions import TidemarkError


class SchemaError(TidemarkError):
    """A schema file is missing or invalid."""


class EncodeError(SchemaError):
    """A record does not fit its schema."""


class DecodeError(SchemaError):
    """Bytes are not a tidemark event this codec can read."""


class InvalidRecordError(EncodeError):
    """A record constructor was given a value its schema allows but the design does not (a negative offset)."""
