"""Errors of the processors stage."""

from tidemark.exceptions import TidemarkError


class ProcessorError(TidemarkError):
    """The processor cannot run (configuration, Kafka)."""


class InvalidEventError(ProcessorError):
    """An event that cannot be folded; it goes to dead letters with this message as the reason."""
