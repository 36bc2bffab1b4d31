"""Errors of the processors stage."""

from tidemark.exceptions import TidemarkError


class ProcessorError(TidemarkError):
    """The processor cannot run (configuration, Kafka)."""


class InvalidEventError(ProcessorError):
    """An event that cannot be folded; it goes to dead letters with this message as the reason."""


class RefusedEventError(InvalidEventError):
    """A valid event the volume must not take: an older generation (fenced) or another tracker's seq."""

    def __init__(self, reason: str, fenced: bool) -> None:
        super().__init__(reason)
        self.fenced = fenced
