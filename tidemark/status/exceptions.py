"""Errors of `tidemark status`."""

from tidemark.exceptions import TidemarkError


class StatusError(TidemarkError):
    """A topic could not be read to its end."""
