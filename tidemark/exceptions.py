"""The project's root error. Every stage derives its own errors from it (see each `exceptions.py`)."""


class TidemarkError(Exception):
    """Base of every error tidemark raises on purpose. The message says what to change."""

    exit_code: int = 1


class ConfigurationError(TidemarkError):
    """A setting is missing or wrong."""

    exit_code = 2
